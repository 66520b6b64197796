/**
 * The flags a stage's own command and the pipeline commands (run, release)
 * share, declared once: the same name, help and default in both places,
 * and one reader that checks them. A flag added to `sifkit convert` here
 * is at once a flag of `sifkit run` and `sifkit release`, with the same
 * meaning (test/unit/stage-flags.test.ts holds every command to it).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { collect } from './output';
import {
  type Backend,
  type Compression,
  COMPRESSIONS,
  DEFAULT_MKSQUASHFS_MEM,
  DEFAULT_RESULTS_DIR,
  errnoCode,
  InputError,
  parseBackend,
  parseCompression,
  parseMem,
  resultsDirFor,
  RUNNERS,
  STAGE_WITH,
  toleranceText,
} from '../index';

interface FlagDef {
  flags: string;
  help: string;
  default?: string;
  repeatable?: boolean;
  /** Under run and release: where the value comes from when the flag is not given, if not `default`. */
  inPipeline?: string;
  /** Under run and release, when the flag means something per variant there. */
  pipelineHelp?: string;
}

/** The stages whose commands have flags of their own. */
export type FlaggedStage = 'build' | 'convert' | 'test' | 'stage' | 'promote' | 'retire';

export const STAGE_FLAGS: Readonly<Record<FlaggedStage, readonly FlagDef[]>> = {
  build: [
    {
      flags: '--server-files <dir>',
      help: "served files (licensed, tools) for the build (default: the recipe's server_files; sources need none)",
    },
    { flags: '--rebuild', help: 'build even when an image with the same definition hash exists' },
    { flags: '--log-dir <dir>', help: 'where build and access logs go', default: '.sifkit/logs' },
    {
      flags: '--source-cache <dir>',
      help: 'the cache declared sources are served from (default: $SIFKIT_SOURCE_CACHE, else sources/ in the state directory)',
    },
    { flags: '--offline', help: 'refuse a declared source missing from the cache instead of fetching it' },
  ],
  convert: [
    { flags: '--backend <name>', help: 'native, apptainer or singularity', default: 'native' },
    {
      flags: '--fix-perms',
      help: 'give the owner rwx on directories and rw on files, as singularity build --fix-perms',
    },
    {
      flags: '--compression <name>',
      help: `squashfs compressor, ${COMPRESSIONS.join(', ')} (only gzip is read by every apptainer and singularity)`,
      default: 'gzip',
    },
    {
      flags: '--mksquashfs-mem <size>',
      help: 'memory mksquashfs may use, e.g. 512M or 2G',
      default: DEFAULT_MKSQUASHFS_MEM,
    },
    {
      flags: '--processors <n>',
      help: 'CPUs mksquashfs may use (default: every online CPU; a Slurm job passes its --cpus-per-task)',
    },
    {
      flags: '--signing-key <file>',
      help: 'add the SBOM and provenance objects and sign the SIF with this private key (default: $SIFKIT_SIGNING_KEY)',
    },
  ],
  test: [
    {
      flags: '--runner <runner>',
      help: 'local or slurm',
      default: 'local',
      inPipeline: "the pipeline file's runner, else local",
    },
    { flags: '--check <name>', help: 'run only this check (repeatable)', repeatable: true },
    {
      flags: '--results-dir <dir>',
      help: `where results are kept (default: beside the tree with --root, else ${DEFAULT_RESULTS_DIR})`,
    },
    { flags: '--baseline <file>', help: 'gate against the last passing run in this results file instead' },
    {
      flags: '--tolerance <fraction>',
      help: 'how much worse a figure may be before the gate fails',
      default: '0.1',
      inPipeline: "the pipeline file's tolerance, else 0.1",
    },
    { flags: '--no-gate', help: 'do not compare figures with the baseline' },
    {
      flags: '--workdir <dir>',
      help: 'slurm: the job directory (default: <tree>/.sifkit/slurm/<image>-<time> with --root, else .sifkit/slurm/<image>-<time>)',
      pipelineHelp:
        "slurm: where each variant's job directory goes, one per image (default: <tree>/.sifkit/slurm/<image>-<time>)",
    },
    { flags: '--partition <name>', help: 'slurm: partition (default from the recipe, else standard-g)' },
    { flags: '--srun <template>', help: 'slurm: job step command; {nodes} {ranks} {gpus}' },
    { flags: '--container-cmd <template>', help: 'slurm: container command; {sif} {image} {workdir}' },
    { flags: '--launcher <template>', help: 'slurm: launcher inside the container; {ranks}' },
  ],
  stage: [{ flags: '--untested', help: 'stage without a passing test run on record' }],
  promote: [
    { flags: '--to <where>', help: 'sif-images, easybuild-sif-images or all', inPipeline: "the pipeline file's to" },
    { flags: '--rollback', help: 'allow moving a link back to an older image' },
    {
      flags: '--tested-key <file>',
      help: "with a trust policy: the private key (a policy tested key) that signs the image's test results (default: $SIFKIT_TESTED_KEY)",
    },
    {
      flags: '--no-compat',
      help: 'promote even when the image breaks on a host snapshot the tree records (sifkit host record)',
    },
  ],
  retire: [
    {
      flags: '--policy <file>',
      help: 'retention policy (default: pipelines/retention.yaml)',
      inPipeline: "the pipeline file's policy, else pipelines/retention.yaml",
    },
    {
      flags: '--easyconfigs <dir>',
      help: 'checkout of the EasyConfig repository whose active EasyConfigs keep images',
      inPipeline: "the pipeline file's easyconfigs",
    },
    {
      flags: '--apply',
      help: 'carry the plan out: quarantine the retired files (O(1) renames); without it retire only plans',
    },
    {
      flags: '--include-referenced',
      help: 'for broken images still referenced: archive their EasyConfigs and move or remove their links',
    },
    {
      flags: '--purge',
      help: 'delete quarantined files older than the grace period, after the backup command succeeds',
    },
    { flags: '--grace-days <n>', help: 'with --purge: override the policy quarantine_days' },
  ],
};

/**
 * Adds a stage's flags to a command. Under run and release (`pipeline`)
 * the help names the stage ("convert: ...") and no flag has a commander
 * default, so a flag not given leaves the pipeline file's `with:` value in
 * force; the help says which default applies. `skip` leaves out flags the
 * command declares itself.
 */
export function addStageFlags(
  cmd: Command,
  stage: FlaggedStage,
  opts: { pipeline?: boolean; skip?: readonly string[] } = {},
): Command {
  for (const f of STAGE_FLAGS[stage]) {
    if (opts.skip?.includes(f.flags.split(' ')[0])) continue;
    if (opts.pipeline) {
      const from = f.inPipeline ?? f.default;
      const help = `${stage}: ${f.pipelineHelp ?? f.help}${from && !f.pipelineHelp ? ` (default: ${from})` : ''}`;
      if (f.repeatable) cmd.option(f.flags, help, collect);
      else cmd.option(f.flags, help);
    } else if (f.repeatable) cmd.option(f.flags, f.help, collect);
    else if (f.default !== undefined) cmd.option(f.flags, f.help, f.default);
    else cmd.option(f.flags, f.help);
  }
  return cmd;
}

/** The convert flags as commander parses them. */
export interface ConvertFlags {
  backend?: string;
  fixPerms?: boolean;
  compression?: string;
  mksquashfsMem?: string;
  processors?: string;
  signingKey?: string;
}

export interface ConvertSettings {
  backend: Backend;
  fixPerms: boolean;
  compression: Compression;
  /** Checked, as given (e.g. 1G): what mksquashfs's -mem and a Slurm job's command line take. */
  mem: string;
  processors?: number;
}

/**
 * The convert flags, checked; one line naming the flag when one is wrong.
 * `physicalBytes`: the memory of the host mksquashfs runs on, when it is this one.
 */
export function convertSettings(flags: ConvertFlags, physicalBytes?: number): ConvertSettings {
  const mem = parseMem(flags.mksquashfsMem ?? DEFAULT_MKSQUASHFS_MEM, physicalBytes);
  const backend = parseBackend(flags.backend ?? 'native');
  const compression = parseCompression(flags.compression ?? 'gzip');
  if (backend !== 'native' && compression !== 'gzip')
    throw new InputError(
      'bad-compression',
      `--compression is for the native backend; ${backend} build always writes gzip`,
    );
  const processors = wholeNumber(flags.processors, '--processors', 1, 1024, 'bad-processors');
  return { backend, fixPerms: Boolean(flags.fixPerms), compression, mem, processors };
}

/** The tested key's file: --tested-key, else $SIFKIT_TESTED_KEY, else none. */
export function testedKeyFile(flags: { testedKey?: string }, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flags.testedKey ?? (env.SIFKIT_TESTED_KEY || undefined);
}

/** The signing key's file: --signing-key, else $SIFKIT_SIGNING_KEY, else none. */
export function signingKeyFile(flags: ConvertFlags, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flags.signingKey ?? (env.SIFKIT_SIGNING_KEY || undefined);
}

/** The test flags as commander parses them (`--no-gate` gives gate: false). */
export interface TestFlags {
  runner?: string;
  check?: string[];
  resultsDir?: string;
  baseline?: string;
  tolerance?: string;
  gate?: boolean;
  workdir?: string;
  partition?: string;
  srun?: string;
  containerCmd?: string;
  launcher?: string;
}

export interface TestSettings {
  runner: 'local' | 'slurm';
  only?: string[];
  resultsDir: string;
  baseline?: string;
  tolerance: number;
  gate: boolean;
  workdir?: string;
  slurm: { partition?: string; srun?: string; container?: string; launcher?: string };
}

/** The test flags, checked; results go beside the tree at `root` unless --results-dir says otherwise. */
export function testSettings(flags: TestFlags, root?: string): TestSettings {
  // The rules of the test stage's `with:` (runner, tolerance), so flag and pipeline file agree.
  const runner = STAGE_WITH.test.shape.runner.unwrap().safeParse(flags.runner ?? 'local').data;
  if (!runner)
    throw new InputError('bad-runner', `--runner ${JSON.stringify(flags.runner)} is not ${RUNNERS.join(' or ')}`);
  const tolerance = toleranceText.safeParse(flags.tolerance ?? '0.1').data;
  if (tolerance === undefined)
    throw new InputError('bad-tolerance', `--tolerance ${flags.tolerance} is not a fraction such as 0.1`);
  return {
    runner,
    only: flags.check,
    resultsDir: resultsDirFor(flags.resultsDir, root),
    baseline: flags.baseline ? path.resolve(flags.baseline) : undefined,
    tolerance,
    gate: flags.gate !== false,
    workdir: flags.workdir ? path.resolve(flags.workdir) : undefined,
    slurm: { partition: flags.partition, srun: flags.srun, container: flags.containerCmd, launcher: flags.launcher },
  };
}

/** The retire flags as commander parses them. */
export interface RetireFlags {
  policy?: string;
  easyconfigs?: string;
  apply?: boolean;
  includeReferenced?: boolean;
  purge?: boolean;
  graceDays?: string;
}

/** `--grace-days`, checked. */
export function graceDays(text: string | undefined): number | undefined {
  return wholeNumber(text, '--grace-days', 0, 3650, 'bad-grace', ' of days');
}

/** A flag's whole number from `min` to `max` (undefined when not given), or one line naming the flag. */
export function wholeNumber(
  text: string | undefined,
  flag: string,
  min: number,
  max: number,
  code: string,
  unit = '',
): number | undefined {
  if (text === undefined) return undefined;
  // Digits only: Number() reads '' and ' ' as 0, and takes 1e3 and 0x10.
  const n = /^[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InputError(code, `${flag} ${text} is not a whole number${unit} from ${min} to ${max}`);
  return n;
}

/** A flag naming a file that must already be there (`--baseline`), checked before any effect. */
export async function requireFile(file: string, flag: string): Promise<void> {
  const st = await fs.stat(file).catch((e: unknown) => {
    throw new InputError('bad-file', `${flag} ${file}: ${errnoCode(e) ?? 'unreadable'}`);
  });
  if (!st.isFile()) throw new InputError('bad-file', `${flag} ${file} is not a regular file`);
}

/** A flag naming a directory that must already be there (`--work-dir`), checked before any effect. */
export async function requireDirectory(dir: string, flag: string): Promise<void> {
  // Worded as the build words a served directory it cannot read, so one flag gets one message wherever it is checked.
  const bad = (why: string) => new InputError('bad-directory', `${flag} ${dir}: missing or not a directory (${why})`);
  const st = await fs.stat(dir).catch((e: unknown) => {
    throw bad(errnoCode(e) ?? 'unreadable');
  });
  if (!st.isDirectory()) throw bad('ENOTDIR');
}
