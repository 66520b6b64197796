/**
 * `--on slurm`, as data: the resources each Slurm stage asks for, the
 * conversion job array's script, and the run's job record. Pure: the
 * executor (slurm-executor.ts) writes, submits and follows.
 */
import { z } from 'zod';
import { InputError } from '../errors';
import { parseDocument } from '../validate/schema';
import { sbatchOption, slurmBlockSchema } from '../validate/schemas/checks';
import { bashWord } from '../emit/bash';
import { sbatchLine, slurmJobName } from '../emit/sbatch';
import type { PipelineDef, StageRef } from './definition';

/** What one kind of job asks Slurm for; unset fields are left to the site's defaults. */
export interface JobResources {
  partition?: string;
  account?: string;
  /** Slurm's time format: minutes, or [D-]HH:MM:SS. */
  time?: string;
  cpus?: number;
  /** Slurm's memory format: 4G, 500M, 0. */
  mem?: string;
  /** sbatch options passed through as they are (e.g. --qos=debug). */
  sbatch: string[];
}

export interface SlurmSettings {
  convert: JobResources;
  test: JobResources;
}

export const DEFAULT_SLURM: SlurmSettings = {
  // Two CPUs fit any node; a site sets its own in the pipeline's slurm: block
  // (mksquashfs scales with cores; it needs its -mem, 1G, plus the reader's).
  convert: { time: '60', cpus: 2, sbatch: [] },
  test: { sbatch: [] },
};

/**
 * Settings from a pipeline file's `slurm:` block (`convert:` and `test:`,
 * each partition/account/time/cpus/mem/sbatch), checked by its one schema
 * (validate/schemas/checks.ts), then the command line's `--sbatch`
 * options, which every job gets.
 */
export function parseSlurmSettings(raw: unknown, source: string, extraSbatch: string[] = []): SlurmSettings {
  const block =
    parseDocument(z.object({ slurm: slurmBlockSchema.optional() }), { slurm: raw }, source, 'bad-slurm').slurm ?? {};
  const cli = parseDocument(z.array(sbatchOption), extraSbatch, '--sbatch', 'bad-slurm');
  const settings = (given: JobResources | Partial<JobResources> | undefined, base: JobResources): JobResources => ({
    ...base,
    ...given,
    sbatch: [...base.sbatch, ...(given?.sbatch ?? []), ...cli],
  });
  return { convert: settings(block.convert, DEFAULT_SLURM.convert), test: settings(block.test, DEFAULT_SLURM.test) };
}

/** sbatch options for a job's resources (partition first, pass-through options last). */
export function sbatchOptions(res: JobResources, withPartition = true): string[] {
  return [
    ...(res.partition && withPartition ? [`--partition=${res.partition}`] : []),
    ...(res.account ? [`--account=${res.account}`] : []),
    ...(res.time ? [`--time=${res.time}`] : []),
    ...(res.cpus ? [`--cpus-per-task=${res.cpus}`] : []),
    ...(res.mem ? [`--mem=${res.mem}`] : []),
    ...res.sbatch,
  ];
}

export interface ConvertTask {
  /** The docker archive in the shared directory. */
  archive: string;
  /** The SIF it becomes, beside it. */
  sif: string;
}

export interface ConvertArrayInput {
  name: string;
  tasks: ConvertTask[];
  resources: JobResources;
  /** Where each task's log goes: `%a` is the task index. */
  logPattern: string;
  /** How a compute node runs sifkit: node, its flags (cli/node-flags.ts) and the CLI's main.js. */
  sifkit: string[];
  /** The run's convert flags (--compression, --mksquashfs-mem...), passed on to every task. */
  convertArgs?: string[];
}

/**
 * The conversion job array: task i converts tasks[i]. A retry resubmits
 * the same script with `--array=i` on the command line, which wins over
 * the directive, so a task's index names the same variant for good.
 */
export function convertArrayScript(job: ConvertArrayInput): string {
  if (!job.tasks.length) throw new InputError('no-variants', 'no variant to convert');
  // The task writes its own log: a path is a bash word, never on an #SBATCH line.
  const [logBefore, logAfter] = [
    job.logPattern.slice(0, job.logPattern.indexOf('%a')),
    job.logPattern.slice(job.logPattern.indexOf('%a') + 2),
  ];
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=${slurmJobName(job.name)}`,
    `#SBATCH --array=0-${job.tasks.length - 1}`,
    '#SBATCH --output=/dev/null',
    '#SBATCH --ntasks=1',
    ...sbatchOptions(job.resources).map((o) => sbatchLine(o, 'the Slurm resources')),
    '# written by sifkit release --on slurm: one task per variant, docker archive -> SIF',
    'set -euo pipefail',
    // The controller signs once the tests passed (pipeline/attest.ts): no job signs, or reads a key.
    'unset SIFKIT_SIGNING_KEY SIFKIT_TESTED_KEY',
    `exec >>${bashWord(logBefore, 'the log directory')}"$SLURM_ARRAY_TASK_ID"${bashWord(logAfter, 'the log name')} 2>&1`,
    'case "${SLURM_ARRAY_TASK_ID:?not an array task}" in',
    ...job.tasks.map((t, i) => `  ${i}) archive=${bashWord(t.archive)}; sif=${bashWord(t.sif)} ;;`),
    '  *) echo "no task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
    'esac',
    // mksquashfs gets the CPUs Slurm gave the task, not the node's.
    `exec ${job.sifkit.map((a) => bashWord(a)).join(' ')} convert "docker-archive:$archive" -o "$sif" --processors "\${SLURM_CPUS_PER_TASK:-1}"${(job.convertArgs ?? []).map((a) => ` ${bashWord(a)}`).join('')}`,
  ];
  return lines.join('\n') + '\n';
}

/** One job as the run records it; `id` is `123` or `123_4` for an array task. */
export interface JobRecord {
  id: string;
  state: string;
  exitCode?: string;
  log: string;
  /** Times this job was submitted for this variant (1, then 2 after one retry...). */
  attempt: number;
}

/** A variant's jobs, kept in the run's state file so another controller can pick them up. */
export interface VariantJobs {
  stem: string;
  sif: string;
  archive: string;
  dockerhash: string;
  imageId: string;
  tag: string;
  convert?: JobRecord;
  test?: JobRecord & { workdir: string };
}

export interface RunJobs {
  version: 1;
  recipe: string;
  /** The array script every conversion of this run (and its retries) uses. */
  convertScript?: string;
  variants: VariantJobs[];
}

const DONE = /^COMPLETED/;
const ENDED =
  /^(COMPLETED|FAILED|TIMEOUT|CANCELLED|NODE_FAIL|BOOT_FAIL|DEADLINE|OUT_OF_MEMORY|PREEMPTED|REVOKED|SPECIAL_EXIT)/;

export function isEnded(state: string | undefined): boolean {
  return state !== undefined && ENDED.test(state);
}

export function isDone(state: string | undefined): boolean {
  return state !== undefined && DONE.test(state);
}

/** What a new run does with a variant's recorded jobs: follow them, or submit again what failed. */
export function nextStep(v: VariantJobs): 'convert' | 'test' | 'follow' {
  if (!v.convert || (isEnded(v.convert.state) && !isDone(v.convert.state))) return 'convert';
  if (!v.test || (isEnded(v.test.state) && !isDone(v.test.state))) return isDone(v.convert.state) ? 'test' : 'convert';
  return 'follow';
}

/** Slurm's state in the progress view's words: queued, running, done, or the state itself. */
function word(state: string): string {
  if (state === 'PENDING' || state === 'CONFIGURING') return 'queued';
  if (state === 'RUNNING' || state === 'COMPLETING') return 'running';
  if (isDone(state)) return 'done';
  return state.toLowerCase();
}

/** Where a variant's jobs are, for the progress view. */
export function phase(v: VariantJobs): string {
  const c = v.convert;
  const t = v.test;
  if (!c) return 'not submitted';
  if (!isDone(c.state)) return `convert ${word(c.state)} (job ${c.id})`;
  if (!t) return 'converted, test not submitted';
  return `convert done, test ${word(t.state)} (job ${t.id})`;
}

/**
 * The pipeline cut where Slurm takes over: the stages before `convert`
 * run here (with `archive` added after them when the file lacks it), then
 * the jobs convert and test, then the stages after `test` run here again.
 */
export function splitForSlurm(def: PipelineDef): { before: StageRef[]; after: StageRef[] } {
  const c = def.stages.findIndex((s) => s.stage === 'convert');
  const t = def.stages.findIndex((s) => s.stage === 'test');
  if (c < 0 || t !== c + 1)
    throw new InputError(
      'bad-pipeline',
      `pipeline ${def.name}: --on slurm needs a convert stage followed by a test stage`,
    );
  const before = def.stages.slice(0, c);
  if (!before.some((s) => s.stage === 'archive')) before.push({ stage: 'archive', with: {} });
  return { before, after: def.stages.slice(t + 1) };
}
