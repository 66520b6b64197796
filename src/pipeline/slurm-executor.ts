/**
 * `--on slurm`, a pipeline rather than a barrier: the build stays on this
 * host; the docker archive is saved into the output directory (shared with
 * the compute nodes); as soon as a variant's archive is there its
 * conversion job is submitted, and its test job with it (afterok on the
 * conversion), while the next variants still build; staging and promotion
 * run here, under the tree's lock, once its tests passed and the
 * regression gate (against the promoted image, as locally) let it
 * through. Job ids and states live in a state file beside the SIFs
 * (`slurm-jobs.ts`), so the controller can go away: a new one (`release
 * --resume`, `sifkit jobs`) picks up where the jobs are, and a failed job is
 * submitted again alone.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError, OperationError } from '../errors';
import { commandLine } from '../emit/bash';
import { sourceText } from '../convert/convert';
import { slurmWithOverrides } from '../checks/profile';
import { saveRun } from '../checks/results';
import { findBaseline, runFailure, testRun, type GateInputs } from '../checks/run';
import { collectResults, writeJobFiles, type SlurmJobInput } from '../checks/slurm';
import { selectChecks } from '../checks/spec';
import type { Recipe } from '../recipe/types';
import { submitJob, type SlurmEffects } from '../slurm/client';
import { realClock } from '../util/clock';
import { writeFileAtomic } from '../util/files';
import type { PipelineContext, PipelineOptions, Stage, VariantState } from './context';
import type { PipelineDef } from './definition';
import { gateInputs, testStage } from './release-stages';
import { attested, attestVariant } from './attest';
import { compatBeforeTests } from './compat-gate';
import { built, dockerArchivePath, sifName, sifPath } from './outputs';
import type { TestWith } from './stage-with';
import { runPipeline, type RunSettings } from './runner';
import { Poller, cancelAll, jobsDirFor, openJobs, readJobs, refresh, stateFileFor, writeJobs } from './slurm-jobs';
import {
  convertArrayScript,
  isDone,
  isEnded,
  nextStep,
  phase,
  sbatchOptions,
  splitForSlurm,
  type JobRecord,
  type RunJobs,
  type SlurmSettings,
  type VariantJobs,
} from './slurm-plan';

export interface SlurmExecution extends SlurmEffects {
  settings: SlurmSettings;
  /** Refuse to start without recorded jobs (`release --resume`). */
  resume: boolean;
  /** Between two scheduler queries; every waiting variant shares one. */
  pollMs: number;
  /** How a compute node runs sifkit: node, its flags (cli/node-flags.ts) and the CLI's main.js. */
  sifkit: string[];
  outDir: string;
  resultsDir: string;
  /** The command line's words after `sifkit`, for the commands the hints name (resume, start). */
  command?: string[];
}

/** The command line again with --resume (a hint's command), when it is known. */
function resumeLine(command: string[] | undefined): string | undefined {
  return command && commandLine(['sifkit', ...command.filter((a) => a !== '--resume'), '--resume']);
}

function failedJob(kind: string, j: JobRecord, resume: string | undefined): OperationError {
  return new OperationError(
    'job-failed',
    `${kind} job ${j.id} ended ${j.state}${j.exitCode ? ` (exit ${j.exitCode})` : ''}; log: ${j.log}`,
    {
      hint: `fix the cause, then ${resume ?? 'the same command with --resume'} submits it again, alone`,
    },
  );
}

/** What the Slurm part of a run needs of the pipeline's context. */
export interface SlurmRunContext {
  recipe: Recipe;
  signal: AbortSignal;
  /** The convert and test flags of the run, which the jobs take too. */
  options?: Pick<PipelineOptions, 'convert' | 'test'>;
}

/**
 * The convert flags as the array's command line takes them. --processors
 * is left out: each task uses the CPUs Slurm gave it.
 */
export function convertArgs(o: PipelineOptions['convert']): string[] {
  if (!o) return [];
  return [
    ...(o.backend && o.backend !== 'native' ? ['--backend', o.backend] : []),
    ...(o.compression && o.compression !== 'gzip' ? ['--compression', o.compression] : []),
    ...(o.mem ? ['--mksquashfs-mem', o.mem] : []),
    ...(o.fixPerms ? ['--fix-perms'] : []),
  ];
}

/** The test job for one variant: the recipe's checks, its Slurm profile with the pipeline's test resources. */
export function testJob(
  ctx: Pick<SlurmRunContext, 'recipe' | 'options'>,
  r: VariantJobs,
  workdir: string,
  exec: SlurmExecution,
): SlurmJobInput {
  const profile = slurmWithOverrides(ctx.recipe.testing.slurm, ctx.options?.test?.slurm);
  const res = exec.settings.test;
  return {
    name: `sifkit-test-${r.dockerhash}`,
    workdir,
    checks: selectChecks(ctx.recipe.checks, ctx.options?.test?.only, ctx.recipe.name),
    profile: {
      ...profile,
      partition: res.partition ?? profile.partition,
      sbatch: [...profile.sbatch, ...sbatchOptions(res, false)],
    },
    sif: r.sif,
    image: r.imageId,
  };
}

async function submit(
  ctx: SlurmRunContext,
  want: Array<{ r: VariantJobs; step: 'convert' | 'test' }>,
  exec: SlurmExecution,
  save: () => Promise<void>,
): Promise<void> {
  const dir = jobsDirFor(exec.outDir);
  await fs.mkdir(path.join(dir, 'logs'), { recursive: true });
  const stamp = `${(exec.clock ?? realClock).now()}`;
  const toConvert = want.filter((w) => w.step === 'convert').map((w) => w.r);
  // Variants submit one by one as their archives appear: the script's name says whose it is.
  const whose = toConvert.length === 1 ? `${toConvert[0].stem}-${toConvert[0].dockerhash}-` : '';
  if (toConvert.length) {
    const script = path.join(dir, `convert-${whose}${stamp}.sh`);
    const logPattern = path.join(dir, 'logs', `convert-${whose}${stamp}-%a.out`);
    await writeFileAtomic(
      script,
      convertArrayScript({
        name: `sifkit-convert-${ctx.recipe.name}`,
        tasks: toConvert.map((r) => ({ archive: r.archive, sif: r.sif })),
        resources: exec.settings.convert,
        logPattern,
        sifkit: exec.sifkit,
        convertArgs: convertArgs(ctx.options?.convert),
      }),
      0o755,
    );
    const id = await submitJob(script, [], ctx.signal, exec);
    toConvert.forEach((r, i) => {
      r.convert = {
        id: `${id}_${i}`,
        state: 'PENDING',
        log: logPattern.replace('%a', String(i)),
        attempt: (r.convert?.attempt ?? 0) + 1,
      };
      r.test = undefined;
    });
    await save();
  }
  for (const { r } of want) {
    const workdir = path.join(dir, `test-${r.stem}-${r.dockerhash}-${stamp}`);
    const script = await writeJobFiles(testJob(ctx, r, workdir, exec));
    const after = isDone(r.convert!.state)
      ? []
      : [`--dependency=afterok:${r.convert!.id}`, '--kill-on-invalid-dep=yes'];
    const id = await submitJob(script, after, ctx.signal, exec);
    r.test = { id, state: 'PENDING', log: path.join(workdir, 'job.out'), attempt: (r.test?.attempt ?? 0) + 1, workdir };
    await save();
  }
}

/**
 * Follows a variant's jobs until its test job ended well (returned) or one
 * of them ended otherwise (a one-line error with state, exit code and log).
 * `onPhase` hears each change once.
 */
export async function awaitJobs(
  r: VariantJobs,
  poller: Poller,
  onPhase: (text: string) => void,
  /** The command that resumes the run, for a failed job's hint. */
  resume?: string,
): Promise<JobRecord & { workdir: string }> {
  let shown = '';
  for (;;) {
    // A line per change: the simple renderer (CI, not a TTY) prints output lines, not title changes.
    const now = `Slurm: ${phase(r)}`;
    if (now !== shown) {
      onPhase(now);
      shown = now;
    }
    if (r.convert && isEnded(r.convert.state) && !isDone(r.convert.state))
      throw failedJob('convert', r.convert, resume);
    if (r.test && isEnded(r.test.state)) {
      if (!isDone(r.test.state)) throw failedJob('test', r.test, resume);
      return r.test;
    }
    await poller.next();
  }
}

/**
 * Submits what the variants need next (their records brought up to date
 * first, by the caller): a conversion for those without a good one, a
 * test job (afterok on its conversion) for those without a good test. A
 * rerun so submits again only what failed.
 */
export async function submitNeeded(
  ctx: SlurmRunContext,
  jobs: RunJobs,
  variants: VariantJobs[],
  exec: SlurmExecution,
  save: () => Promise<void>,
): Promise<void> {
  const want = variants
    .map((r) => ({ r, step: nextStep(r) }))
    .filter((w): w is { r: VariantJobs; step: 'convert' | 'test' } => w.step !== 'follow');
  if (want.length) await submit(ctx, want, exec, save);
}

/** What the Slurm stage shares across the run's variants. */
interface SlurmRun {
  jobs: RunJobs;
  save: () => Promise<void>;
  poller: Poller;
  gate: GateInputs;
}

/** The variant's record in the run's jobs (made on first sight; a rerun finds the one recorded for its SIF). */
function recordFor(ctx: PipelineContext, v: VariantState, jobs: RunJobs): VariantJobs {
  const sif = sifPath(ctx, v);
  let r = jobs.variants.find((x) => x.sif === sif);
  if (!r) {
    const b = built(v);
    r = {
      stem: v.rendered!.names.stem,
      sif,
      archive: dockerArchivePath(ctx, v),
      dockerhash: b.dockerhash,
      imageId: b.imageId,
      tag: b.tag,
    };
    jobs.variants.push(r);
  }
  return r;
}

/**
 * Right after the variant's archive: its conversion and test jobs
 * submitted (or the recorded ones followed), then followed until the test
 * job ends; its test run read, gated and saved as the local test stage
 * would, its failure the same one.
 */
function slurmStage(exec: SlurmExecution, run: SlurmRun): Stage {
  return {
    name: 'slurm',
    title: 'Convert and test as Slurm jobs',
    needs: ['rendered', 'build', 'archive'],
    gives: ['convert', 'test'],
    async skip(ctx, v) {
      // Tested already (a passing run for this very SIF): nothing to submit. Tested by an earlier
      // controller that stopped before attesting: attest now (run, below).
      if (!(await testStage.skip!(ctx, v, {}))) return undefined;
      return (await attested(ctx, sifPath(ctx, v)).catch(() => true)) ? 'tested already' : undefined;
    },
    async run(ctx, v, report) {
      // The skip read the results file once and left the passing run it found in v.results.test
      // (nothing sets it earlier in a run): tested, not yet attested.
      if (v.results.test) {
        await attestSlurmSif(ctx, v, sifPath(ctx, v), dockerArchivePath(ctx, v), report);
        report.title('Slurm: tested already; SBOM, provenance and signature added');
        return;
      }
      // Before any job: the image the jobs would convert and test, against the tree's hosts (as locally).
      await compatBeforeTests(ctx, v, { kind: 'engine', ref: built(v).imageId });
      // The baseline read before any job of this variant is submitted: a missing one is refused first.
      const baseline = await findBaseline(run.gate, v.rendered!.names.stem, sifName(v));
      const r = recordFor(ctx, v, run.jobs);
      await submitNeeded(ctx, run.jobs, [r], exec, run.save);
      const t = await awaitJobs(
        r,
        run.poller,
        (now) => {
          report.title(now);
          report.progress(now);
        },
        resumeLine(exec.command),
      );
      const results = await collectResults(testJob(ctx, r, t.workdir, exec), t.state, exec.clock);
      const stat = await fs.stat(r.sif);
      const test = testRun({
        image: path.basename(r.sif),
        stem: r.stem,
        dockerhash: r.dockerhash,
        recipe: ctx.recipe.name,
        params: { ...v.values },
        runner: 'slurm',
        jobId: t.id,
        jobState: t.state,
        started: stat.mtime,
        finished: new Date((exec.clock ?? realClock).now()),
        checks: results,
        baseline,
        gate: run.gate,
      });
      const file = await saveRun(exec.resultsDir, test);
      v.results.convert = {
        out: r.sif,
        backend: 'native',
        source: sourceText({ kind: 'docker-archive', path: r.archive }),
        size: stat.size,
        durationMs: 0,
      };
      v.results.test = test;
      v.results.slurm = { convert: r.convert, test: r.test };
      const failure = runFailure(test, { resultsFile: file, jobDir: t.workdir });
      if (failure) throw failure;
      const a = await attestSlurmSif(ctx, v, r.sif, r.archive, report);
      report.title(
        `Slurm: converted (job ${r.convert!.id}), tested (job ${t.id}): ${results.length} checks passed${a.signature ? '; signed' : ''}`,
      );
    },
  };
}

/**
 * The SIF a job converted gets its SBOM, provenance and build signature
 * here, in the controller, once its test job ended: the key never goes
 * into a job, and no job reads the file while objects are appended to it
 * (the partition the tests ran is not changed by them).
 */
async function attestSlurmSif(
  ctx: PipelineContext,
  v: VariantState,
  sif: string,
  archive: string,
  report: { progress(line: string): void },
) {
  report.progress('SBOM, provenance and signature');
  return attestVariant(ctx, v, sif, { kind: 'docker-archive', path: archive });
}

/**
 * Runs a pipeline with conversion and tests on Slurm. Variants that fail
 * here (build, a job) are recorded on their VariantState as the local
 * executor does; Ctrl-C cancels the run's open jobs.
 */
export async function runOnSlurm(
  def: PipelineDef,
  ctx: PipelineContext,
  stages: Record<string, Stage>,
  settings: RunSettings,
  exec: SlurmExecution,
): Promise<void> {
  const { before, after } = splitForSlurm(def);
  const stateFile = stateFileFor(exec.outDir);
  const jobs: RunJobs = (await readJobs(stateFile)) ?? { version: 1, recipe: ctx.recipe.name, variants: [] };
  if (exec.resume && !jobs.variants.length)
    throw new InputError('nothing-to-resume', `no Slurm jobs recorded in ${stateFile}`, {
      hint: exec.command
        ? `start without --resume: ${commandLine(['sifkit', ...exec.command.filter((a) => a !== '--resume')])}`
        : 'start the run without --resume',
    });
  const save = () => writeJobs(stateFile, jobs);

  // The gate as the test stage would run it (its pipeline `with:`), the tree opened before anything runs.
  const gate = await gateInputs(ctx, (def.stages.find((s) => s.stage === 'test')?.with ?? {}) as TestWith);
  const poller = new Poller(jobs, save, exec.pollMs, ctx.signal, exec);
  try {
    // The jobs recorded may have moved on while no controller watched.
    if (await refresh(jobs, ctx.signal, exec)) await save();
    // Every variant at once: builds keep to their slots (--build-jobs), and a variant waiting on
    // its jobs holds no build back.
    await runPipeline(
      { ...def, stages: [...before, { stage: 'slurm', with: {} }, ...after] },
      ctx,
      { ...stages, slurm: slurmStage(exec, { jobs, save, poller, gate }) },
      { ...settings, jobs: Math.max(settings.jobs, ctx.variants.length) },
    );
  } finally {
    if (ctx.signal.aborted && openJobs(jobs).length) {
      await cancelAll(jobs, exec).catch(() => undefined);
      await save();
    }
  }
}
