import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { showBuildPlan } from './build-plan-view';
import { collect, jsonDoc, table } from './output';
import { runRecipePipeline, throwFirstVariantError } from './pipeline-run';
import { errorLine, runCommand } from './run';
import { NODE_FLAGS } from './node-flags';
import {
  addStageFlags,
  convertSettings,
  signingKeyFile,
  testedKeyFile,
  graceDays,
  requireDirectory,
  requireFile,
  testSettings,
  wholeNumber,
  type ConvertFlags,
  type FlaggedStage,
  type RetireFlags,
  type TestFlags,
} from './stage-flags';
import {
  ExitCode,
  commandLine,
  initTree,
  InputError,
  InterruptedError,
  isSifkitError,
  loadPipeline,
  loadSigningKey,
  openTree,
  parseSlurmSettings,
  parseTarget,
  resolveRoot,
  type PipelineContext,
  type PipelineDef,
  runOnSlurm,
  type RunSettings,
  splitForSlurm,
  STAGES,
} from '../index';

interface RunFlags extends ConvertFlags, TestFlags, RetireFlags {
  recipe?: string;
  set?: string[];
  matrix?: boolean;
  jobs?: string;
  buildJobs?: string;
  convertJobs?: string;
  engines?: string;
  root?: string;
  out?: string;
  untested?: boolean;
  to?: string;
  serverFiles?: string;
  rebuild?: boolean;
  sourceCache?: string;
  offline?: boolean;
  logDir?: string;
  date?: string;
  rollback?: boolean;
  init?: boolean;
  testedKey?: string;
  compat?: boolean;
  json?: boolean;
  on?: string;
  resume?: boolean;
  sbatch?: string[];
  poll?: string;
  dryRun?: boolean;
}

/** A path relative to here when it is below here (shorter to read and to copy), else absolute. */
function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

function interrupted(e: Error | undefined): boolean {
  return isSifkitError(e) && e.code === 'interrupted';
}

/** Refused by a safety check (exit 3): the regression gate, the leak scan. */
function refused(e: Error | undefined): boolean {
  return isSifkitError(e) && e.exitCode === ExitCode.refused;
}

/** This very command line, as one to paste: what resumes an interrupted run (each stage skips what is done). */
export function resumeCommand(argv: readonly string[] = process.argv.slice(2)): string {
  return commandLine(['sifkit', ...argv]);
}

/** One row per variant: where it went and what each stage did. */
function summary(ctx: PipelineContext, stages: string[]): { rows: string[][]; variants: unknown[] } {
  const variants = ctx.variants.map((v) => {
    const b = v.results.build;
    const c = v.results.convert;
    const given = new Map<string, unknown>(Object.entries(v.results));
    const done = (s: string) => (s === 'render' ? Boolean(v.rendered) : given.get(s) !== undefined);
    const failedAt = v.failedStage ? stages.indexOf(v.failedStage) : -1;
    const status = Object.fromEntries(
      stages.map((s, i) => {
        if (failedAt >= 0 && i === failedAt)
          return [
            s,
            interrupted(v.error) ? 'interrupted' : `${refused(v.error) ? 'REFUSED' : 'FAILED'}: ${v.error!.message}`,
          ];
        if (failedAt >= 0 && i > failedAt) return [s, 'not reached'];
        if (v.skipped[s]) return [s, `skipped: ${v.skipped[s]}`];
        if (s === 'build' && b?.reused) return [s, 'skipped: reused the image with the same definition hash'];
        return [s, done(s) ? 'done' : '-'];
      }),
    );
    return {
      stem: v.rendered?.names.stem,
      values: v.values,
      dockerhash: b?.dockerhash,
      image: b?.tag,
      sif: c?.out,
      engine: v.results.engine,
      stages: status,
      error: v.error?.message,
      results: v.results,
    };
  });
  const rows = variants.map((v) => [
    v.stem ?? '?',
    v.dockerhash ?? '-',
    ...stages.map((s) =>
      v.stages[s].startsWith('skipped')
        ? 'skip'
        : v.stages[s] === 'done'
          ? 'done'
          : v.stages[s].startsWith('FAILED')
            ? 'FAILED'
            : v.stages[s].startsWith('REFUSED')
              ? 'REFUSED'
              : v.stages[s] === 'interrupted'
                ? 'interrupted'
                : '-',
    ),
    v.sif ?? '-',
  ]);
  return { rows, variants };
}

function registerOne(program: Command, name: 'run' | 'release'): Command {
  const cmd = program.command(name);
  if (name === 'run')
    cmd
      .description("run a pipeline (pipelines/NAME.yaml or a file) over a recipe's variants")
      .argument('<pipeline>', 'release, promote, retire, build, render, or a YAML file')
      .requiredOption('--recipe <name>', 'the recipe (in docker-defs/) or its path');
  else
    cmd
      .description('the whole release of a recipe: render, build, convert, test, stage, promote (resumable)')
      .argument('<recipe>', 'the recipe (in docker-defs/) or its path');
  cmd
    .option('--set <name=value>', 'set a parameter (repeatable)', collect)
    .option('--matrix', "every variant of the recipe's build matrix")
    .option('--jobs <n>', 'variants at once', '1')
    .option('--build-jobs <n>', 'builds at once on each engine', '1')
    .option('--convert-jobs <n>', 'conversions at once', '1')
    .option('--engines <list>', 'Docker engines to spread builds over (comma-separated DOCKER_HOST addresses)')
    .option(
      '--root <dir>',
      'the container tree, which must exist (default: $LUMI_CONTAINER_REPOSITORY_ROOT, else /appl/local/containers)',
    )
    .option('--init', 'make the container tree at --root first when it is not there (as sifkit init)')
    .option('--out <dir>', 'where SIFs are written', '.sifkit/sif')
    .option('--date <YYYYMMDD>', 'the date in EasyConfig names');
  // Each stage takes the flags its own command takes, with the same meaning
  // (stage-flags.ts); the pipeline file's `with:` values apply when a flag is not given.
  for (const stage of PIPELINE_FLAGGED[name]) addStageFlags(cmd, stage, { pipeline: true });
  return cmd
    .option(
      '--on <executor>',
      "where conversion and tests run: local, or slurm (jobs; default: the pipeline file's executor, else local)",
    )
    .option('--resume', 'with --on slurm: follow the jobs recorded beside the SIFs, submitting again only what failed')
    .option(
      '--sbatch <option>',
      'with --on slurm: an sbatch option every job gets, e.g. --sbatch=--qos=debug (repeatable)',
      collect,
    )
    .option('--poll <seconds>', 'with --on slurm: seconds between scheduler queries', '10')
    .option('--dry-run', 'build nothing: show the build plan (engine per variant, steps to run and shared)')
    .option('--json', 'print one JSON document on stdout');
}

/** The stages that work on the container tree (test gates against it and records there). */
const TREE_STAGES = ['test', 'stage', 'promote', 'retire'];
/** The stages that write to the container tree. */
const WRITING_STAGES = ['stage', 'promote', 'retire'];

/** The stages whose flags each pipeline command takes: run can name any pipeline; release has no retire stage. */
const PIPELINE_FLAGGED: Record<'run' | 'release', readonly FlaggedStage[]> = {
  run: ['build', 'convert', 'test', 'stage', 'promote', 'retire'],
  release: ['build', 'convert', 'test', 'stage', 'promote'],
};

async function run(pipeline: string, recipe: string, flags: RunFlags): Promise<number> {
  return runCommand(async (io) => {
    // Every flag, and the tree, checked before anything runs (--dry-run too, though it builds nothing).
    const root = resolveRoot(flags.root);
    const keyFile = signingKeyFile(flags);
    const signingKey = keyFile ? await loadSigningKey(keyFile) : undefined;
    const testedFile = testedKeyFile(flags);
    const testedKey = testedFile ? await loadSigningKey(testedFile) : undefined;
    const grace = graceDays(flags.graceDays);
    const to = flags.to === undefined ? undefined : parseTarget(flags.to);
    const engines = engineList(flags.engines);
    const def = await loadPipeline(pipeline, STAGES);
    const executor = flags.on ?? def.executor ?? 'local';
    if (executor !== 'local' && executor !== 'slurm')
      throw new InputError('bad-executor', `--on ${flags.on} is not local or slurm`);
    if (executor === 'local' && (flags.resume || flags.sbatch))
      throw new InputError('bad-usage', '--resume and --sbatch are for --on slurm');
    // mksquashfs runs here unless Slurm jobs convert: then only the absolute bound applies.
    const convert = convertSettings(flags, executor === 'local' ? os.totalmem() : undefined);
    // Before the plan too: a plan keyed by a directory that is not there would describe builds that cannot run.
    if (flags.serverFiles !== undefined) await requireDirectory(flags.serverFiles, '--server-files');
    if (flags.dryRun) {
      // Nothing is written: the tree is not opened (or made by --init), results go nowhere.
      const test = testSettings(flags, root);
      if (test.baseline !== undefined) await requireFile(test.baseline, '--baseline');
      return showBuildPlan(recipe, { ...flags, engines, only: test.only }, io);
    }
    // The tree must be there before the first build: a typo in --root is one line, not a second tree (--init makes one).
    // Opened once here and handed to the stages; its standard directories are made when a stage writes there.
    const writes = def.stages.some((s) => WRITING_STAGES.includes(s.stage));
    const tree = def.stages.some((s) => TREE_STAGES.includes(s.stage))
      ? flags.init
        ? (await initTree(root)).tree
        : await openTree(root, writes)
      : undefined;
    if (flags.init && !tree)
      throw new InputError('bad-usage', `--init makes a container tree, and pipeline ${def.name} does not use one`);
    // Results and logs beside the tree, so any directory finds them.
    const test = testSettings(flags, tree?.root);
    if (test.baseline !== undefined) await requireFile(test.baseline, '--baseline');
    const logDir = path.resolve(flags.logDir ?? (tree ? tree.logs : '.sifkit/logs'));
    const outDir = path.resolve(flags.out ?? '.sifkit/sif');
    const execute = executor === 'slurm' ? slurmExecute(def, flags, outDir, test.resultsDir) : undefined;
    const ctx = await runRecipePipeline(
      pipeline,
      recipe,
      flags,
      io,
      {
        serverFiles: flags.serverFiles ? path.resolve(flags.serverFiles) : undefined,
        rebuild: flags.rebuild,
        sourceCache: flags.sourceCache ? path.resolve(flags.sourceCache) : undefined,
        offline: flags.offline,
        logDir,
        outDir,
        tree,
        // Given on the command line, else the pipeline file's `with:`, else the stage's default.
        runner: flags.runner === undefined ? undefined : test.runner,
        tolerance: flags.tolerance === undefined ? undefined : test.tolerance,
        resultsDir: test.resultsDir,
        test: { only: test.only, baseline: test.baseline, gate: test.gate, workdir: test.workdir, slurm: test.slurm },
        convert,
        signingKey,
        testedKey,
        untested: flags.untested,
        to,
        rollback: flags.rollback,
        compat: flags.compat,
        purge: flags.purge,
        graceDays: grace,
        policy: flags.policy ? path.resolve(flags.policy) : undefined,
        easyconfigs: flags.easyconfigs ? path.resolve(flags.easyconfigs) : undefined,
        apply: flags.apply,
        includeReferenced: flags.includeReferenced,
        engines,
        slots: {
          build: wholeNumber(flags.buildJobs, '--build-jobs', 1, 64, 'bad-jobs') ?? 1,
          convert: wholeNumber(flags.convertJobs, '--convert-jobs', 1, 64, 'bad-jobs') ?? 1,
        },
      },
      execute,
    );
    const stages = executor === 'slurm' ? slurmStages(def) : def.stages.map((s) => s.stage);
    const { rows, variants } = summary(ctx, stages);
    const failed = ctx.variants.filter((v) => v.error).length;
    if (io.json)
      io.stdout(jsonDoc({ ok: failed === 0, pipeline, recipe: ctx.recipe.name, root: tree?.root, variants }));
    else {
      // Variants as headings and SIF paths on their own lines: both are too long to share a row and must stay whole.
      const failedRed = (c: string) =>
        c === 'FAILED' || c === 'REFUSED' ? ('red' as const) : c === 'interrupted' ? ('yellow' as const) : undefined;
      io.stdout(
        table(
          rows.map((r) => r.slice(0, -1)),
          [{ header: 'variant', group: true }, 'dockerhash', ...stages.map((s) => ({ header: s, color: failedRed }))],
        ),
      );
      for (const sif of rows.map((r) => r[r.length - 1]).filter((f) => f !== '-'))
        io.stdout(`sif: ${displayPath(sif)}\n`);
      if (tree)
        io.stdout(`tree: ${tree.root} (${commandLine(['sifkit', 'status', '--root', displayPath(tree.root)])})\n`);
      io.stdout(`test results: ${test.resultsDir}   logs: ${logDir}\n`);
    }
    if (io.signal.aborted) {
      const at = ctx.variants.find((v) => interrupted(v.error));
      throw new InterruptedError(
        `interrupted${at?.failedStage ? ` during ${at.failedStage}${ctx.variants.length > 1 ? ` of ${at.rendered?.names.stem ?? 'a variant'}` : ''}` : ''}; nothing half-written is left`,
        { hint: `to resume (each stage skips what is done): ${resumeCommand()}` },
      );
    }
    if (io.json && failed) {
      // One JSON document on stdout: the summary carries the errors; stderr gets the line.
      const e = ctx.variants.find((v) => v.error)!.error!;
      io.stderr(`sifkit: error: ${errorLine(e).message}\n`);
      return isSifkitError(e) ? e.exitCode : ExitCode.failed;
    }
    throwFirstVariantError(ctx);
  }, flags);
}

/** --engines a,b as addresses. */
function engineList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const list = text.split(',').map((s) => s.trim());
  // `--engines ,,` named no engine: not the default one, silently.
  if (list.some((s) => !s))
    throw new InputError('bad-engines', `--engines ${JSON.stringify(text)} has an empty entry; give ENDPOINT,ENDPOINT`);
  return list;
}

/** The executor for --on slurm, its settings checked before anything runs. */
function slurmExecute(def: PipelineDef, flags: RunFlags, outDir: string, resultsDir: string) {
  const settings = parseSlurmSettings(def.slurm, `pipeline ${def.name}`, flags.sbatch ?? []);
  const poll = Number(flags.poll ?? '10');
  if (!Number.isFinite(poll) || poll < 0.2 || poll > 3600)
    throw new InputError('bad-poll', `--poll ${flags.poll} is not a number of seconds from 0.2 to 3600`);
  // A compute node runs the same sifkit: this node and this main.js, on the shared file system.
  const sifkit = [process.execPath, ...NODE_FLAGS, path.resolve(process.argv[1])];
  return (d: PipelineDef, ctx: PipelineContext, run: RunSettings) =>
    runOnSlurm(d, ctx, STAGES, run, {
      settings,
      resume: Boolean(flags.resume),
      pollMs: poll * 1000,
      sifkit,
      outDir,
      resultsDir,
      command: process.argv.slice(2),
    });
}

/** The summary's columns under --on slurm: the jobs stand where convert and test were. */
function slurmStages(def: PipelineDef): string[] {
  const { before, after } = splitForSlurm(def);
  return [...before.map((s) => s.stage), 'slurm', ...after.map((s) => s.stage)];
}

export function registerRelease(program: Command): void {
  registerOne(program, 'run').action(async (pipeline: string, flags: RunFlags) => {
    process.exitCode = await run(pipeline, flags.recipe as string, flags);
  });
  registerOne(program, 'release').action(async (recipe: string, flags: RunFlags) => {
    process.exitCode = await run('release', recipe, flags);
  });
}
