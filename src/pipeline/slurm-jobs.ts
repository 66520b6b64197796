/**
 * The record of an `--on slurm` run's jobs and its I/O: the state file
 * beside the SIFs (read, written atomically), the scheduler asked about
 * the open jobs (once per interval, whatever the number of variants
 * waiting), and every open job cancelled on Ctrl-C. The executor
 * (`slurm-executor.ts`) submits and follows through this record.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cancelJobs, jobStates, type SlurmEffects } from '../slurm/client';
import { realClock } from '../util/clock';
import { removeDeadTempsIn, writeFileAtomic } from '../util/files';
import { parseJsonDocument } from '../validate/schema';
import { runJobsSchema } from '../validate/schemas/slurm';
import { isEnded, type JobRecord, type RunJobs } from './slurm-plan';

/** Beside the SIFs: the state file, the job scripts, the conversion logs, the test jobs' directories. */
export const JOBS_DIR = '.sifkit-slurm';

export function jobsDirFor(outDir: string): string {
  return path.join(path.resolve(outDir), JOBS_DIR);
}

export function stateFileFor(outDir: string): string {
  return path.join(jobsDirFor(outDir), 'jobs.json');
}

/** The run's state file, checked against its schema (a new controller acts on it); none: undefined. */
export async function readJobs(file: string): Promise<RunJobs | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  return parseJsonDocument(runJobsSchema, text, file, 'bad-jobs-file');
}

export async function writeJobs(file: string, jobs: RunJobs): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  // What a killed controller was writing here (the state, a job script) goes before it writes again.
  await removeDeadTempsIn(path.dirname(file));
  await writeFileAtomic(file, JSON.stringify(jobs, null, 2) + '\n');
}

/** Every job of the run that has not ended. */
export function openJobs(jobs: RunJobs): JobRecord[] {
  return jobs.variants
    .flatMap((v) => [v.convert, v.test])
    .filter((j): j is JobRecord => j !== undefined && !isEnded(j.state));
}

/** Asks the scheduler once about every open job; true when something changed. */
export async function refresh(jobs: RunJobs, signal?: AbortSignal, fx: SlurmEffects = {}): Promise<boolean> {
  const open = openJobs(jobs);
  if (!open.length) return false;
  const got = await jobStates(
    open.map((j) => j.id),
    signal,
    fx,
  );
  let changed = false;
  for (const j of open) {
    const s = got.get(j.id);
    if (s && (s.state !== j.state || s.exitCode !== j.exitCode)) {
      j.state = s.state;
      if (s.exitCode !== undefined) j.exitCode = s.exitCode;
      changed = true;
    }
  }
  return changed;
}

/** Cancels every open job and records it so; returns their ids. */
export async function cancelAll(jobs: RunJobs, fx: SlurmEffects = {}): Promise<string[]> {
  const open = openJobs(jobs);
  await cancelJobs(
    open.map((j) => j.id),
    fx,
  );
  for (const j of open) j.state = 'CANCELLED';
  return open.map((j) => j.id);
}

/** One scheduler query per interval, whatever the number of variants waiting. */
export class Poller {
  private round?: Promise<void>;
  constructor(
    private jobs: RunJobs,
    private save: () => Promise<void>,
    private pollMs: number,
    private signal: AbortSignal,
    private fx: SlurmEffects = {},
  ) {}
  next(): Promise<void> {
    this.round ??= (async () => {
      await (this.fx.clock ?? realClock).sleep(this.pollMs, this.signal).catch(() => {
        throw this.signal.reason;
      });
      if (await refresh(this.jobs, this.signal, this.fx)) await this.save();
    })().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }
}
