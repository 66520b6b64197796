/**
 * The Slurm runner: one batch job per image, as LUMI's test scripts do
 * (reference §5): each check a job step in its container, its output and
 * exit status left in the job's directory. sifkit submits, follows and
 * cancels through the Slurm client (slurm/client.ts), and reads the files back. A job that
 * times out, is cancelled or loses its node is reported as such.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError, throwIfAborted } from '../errors';
import { realClock, type Clock } from '../util/clock';
import { writeFileAtomic } from '../util/files';
import { cancelJobs, inQueue, showJob, submitJob, type SlurmEffects } from '../slurm/client';
import { judge, type CheckResult, type Outcome } from './judge';
import { bashWord, fillShell } from '../emit/bash';
import { sbatchLine, slurmJobName, slurmPartition } from '../emit/sbatch';
import type { Check } from '../recipe/checks';
import type { SlurmProfile } from '../recipe/testing';
import { checkScript } from './profile';

export interface SlurmJobInput {
  name: string;
  workdir: string;
  checks: Check[];
  profile: SlurmProfile;
  /** What `{sif}` and `{image}` stand for in the container template. */
  sif?: string;
  image?: string;
}

/**
 * The batch script (pure): one step per check, each bounded by its
 * timeout. Every value enters through its emitter: the partition, the
 * options and the job's name are checked for `#SBATCH` lines, and paths
 * and the SIF are quoted bash words (the job writes its own output file,
 * so no path is ever on an `#SBATCH` line).
 */
export function batchScript(job: SlurmJobInput): string {
  const nodes = Math.max(...job.checks.map((c) => c.nodes));
  const minutes = Math.ceil(job.checks.reduce((s, c) => s + c.timeoutSeconds, 0) / 60) + 5;
  const workdir = bashWord(job.workdir, 'the job directory');
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=${slurmJobName(job.name)}`,
    `#SBATCH --partition=${slurmPartition(job.profile.partition)}`,
    `#SBATCH --nodes=${nodes}`,
    `#SBATCH --time=${minutes}`,
    '#SBATCH --output=/dev/null',
    ...job.profile.sbatch.map((o) => sbatchLine(o)),
    '# written by sifkit test: each check is one step; its output and exit status stay here',
    `exec >>${bashWord(`${job.workdir}/job.out`, 'the job directory')} 2>&1`,
    // A job that starts after its directory was removed must not write its files where it was submitted.
    `cd ${workdir} || exit 1`,
  ];
  const cleanup = job.profile.cleanup
    ? fillShell(job.profile.cleanup, { workdir: job.workdir }, 'the cleanup command')
    : '';
  // Steps run in the background so that a cancel (SIGTERM) is acted on at once, not after the step.
  lines.push(`cleanup() { ${cleanup || 'true'}; }`);
  lines.push("trap 'kill $step 2>/dev/null; cleanup; exit 143' TERM INT");
  for (const c of job.checks) {
    const vars = {
      nodes: c.nodes,
      ranks: c.ranks,
      gpus: c.gpus,
      workdir: job.workdir,
      sif: job.sif ?? '',
      image: job.image ?? '',
    };
    const step = [
      fillShell(job.profile.srun, vars, 'the srun command'),
      fillShell(job.profile.container, vars, 'the container command'),
      bashWord(`/myrun/check-${c.name}.sh`),
    ]
      .filter(Boolean)
      .join(' ');
    const file = (ext: string) => bashWord(`${c.name}.${ext}`);
    lines.push(`date +%s%3N > ${file('start')}`);
    // A grace period over the check's own limit (enforced inside the container) for the step to wind down.
    lines.push(`timeout --signal=KILL ${c.timeoutSeconds + 30} ${step} > ${file('out')} 2>&1 &`);
    lines.push('step=$!; wait $step; rc=$?');
    lines.push(`echo $rc > ${file('rc')}`);
    lines.push('cleanup');
    lines.push(`date +%s%3N > ${file('end')}`);
  }
  lines.push('echo done > job.done');
  return lines.join('\n') + '\n';
}

/** A poll's pause that ends at once on Ctrl-C. */
async function pause(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  await clock.sleep(ms, signal).catch(() => undefined);
  throwIfAborted(signal);
}

function outcomeOfJob(state: string | undefined): Outcome {
  switch (state) {
    case 'TIMEOUT':
    case 'DEADLINE':
      return 'timeout';
    case 'CANCELLED':
    case 'PREEMPTED':
      return 'cancelled';
    case 'NODE_FAIL':
    case 'BOOT_FAIL':
      return 'node-failure';
    default:
      return 'not-run';
  }
}

const TERMINAL = /^(COMPLETED|FAILED|TIMEOUT|CANCELLED|NODE_FAIL|BOOT_FAIL|DEADLINE|OUT_OF_MEMORY|PREEMPTED)/;

export interface SlurmRun {
  jobId: string;
  state: string;
  workdir: string;
  results: CheckResult[];
}

/** Writes the job's directory (check scripts, job.sh); returns the batch script's path. */
export async function writeJobFiles(job: SlurmJobInput): Promise<string> {
  if (!job.checks.length) throw new InputError('no-checks', 'the recipe has no checks to run');
  await fs.mkdir(job.workdir, { recursive: true });
  // Whole or absent (a kill mid-write leaves a temp name, never half a script sbatch could run).
  for (const c of job.checks)
    await writeFileAtomic(path.join(job.workdir, `check-${c.name}.sh`), checkScript(c, job.profile.launcher), 0o755);
  const script = path.join(job.workdir, 'job.sh');
  await writeFileAtomic(script, batchScript(job), 0o755);
  return script;
}

export async function runSlurm(
  job: SlurmJobInput,
  opts: { signal?: AbortSignal; pollMs?: number; onState?: (s: string) => void } & SlurmEffects = {},
): Promise<SlurmRun> {
  const clock = opts.clock ?? realClock;
  const fx: SlurmEffects = { processes: opts.processes, clock };
  const script = await writeJobFiles(job);
  const submitted = clock.now();
  const jobId = await submitJob(script, [], opts.signal, fx);
  const deadline = submitted + (job.checks.reduce((s, c) => s + c.timeoutSeconds, 0) + 600) * 1000;
  let state = 'PENDING';
  try {
    for (;;) {
      throwIfAborted(opts.signal);
      // A job the controller has forgotten shows nothing; a controller that is down is an error.
      const shown = await showJob(jobId, opts.signal, fx);
      state = shown?.state ?? state;
      opts.onState?.(state);
      if (TERMINAL.test(state)) break;
      // Gone from the controller's memory: when squeue has nothing either, it ended.
      if (!shown && !(await inQueue(jobId, opts.signal, fx))) break;
      if (clock.now() > deadline) {
        await cancelJobs([jobId], fx).catch(() => undefined);
        state = 'TIMEOUT';
        break;
      }
      await pause(clock, opts.pollMs ?? 1000, opts.signal);
    }
  } catch (e) {
    await cancelJobs([jobId], fx).catch(() => undefined);
    throw e;
  }
  return { jobId, state, workdir: job.workdir, results: await collectResults(job, state, clock) };
}

/** The job was ended from outside before its script did: cancelled, timed out, lost its node. */
function cutShort(state: string): boolean {
  return outcomeOfJob(state) !== 'not-run';
}

/**
 * Each check's result from the files its step left in the job's directory; `state` explains the missing ones.
 * A job that was cut short (scancel, its time limit, its node) signals every process of the job at once, so
 * the running step can die and leave its exit status before the script's trap acts on the signal: the check
 * that was running when the job ended (the last one started, with no `job.done`) is judged by how the job
 * ended unless it passed. One that failed by itself had let the script go on to start the next.
 */
export async function collectResults(
  job: SlurmJobInput,
  state: string,
  clock: Clock = realClock,
): Promise<CheckResult[]> {
  const read = (f: string) => fs.readFile(path.join(job.workdir, f), 'utf8').catch(() => undefined);
  const files = await Promise.all(
    job.checks.map(async (c) => ({
      rcText: await read(`${c.name}.rc`),
      output: (await read(`${c.name}.out`)) ?? '',
      start: Number((await read(`${c.name}.start`))?.trim()),
      end: Number((await read(`${c.name}.end`))?.trim()) || clock.now(),
    })),
  );
  const done = (await read('job.done')) !== undefined;
  const lastStarted = files.map((f) => Boolean(f.start)).lastIndexOf(true);
  return job.checks.map((c, i) => {
    const { rcText, output, start, end } = files[i];
    const durationMs = start ? Math.max(0, end - start) : 0;
    if (rcText === undefined) return judge(c, { exitCode: null, output, durationMs, outcome: outcomeOfJob(state) });
    const result = judge(c, { exitCode: Number(rcText.trim()), output, durationMs });
    if (!result.passed && i === lastStarted && !done && cutShort(state))
      return judge(c, { exitCode: result.exitCode, output, durationMs, outcome: outcomeOfJob(state) });
    return result;
  });
}
