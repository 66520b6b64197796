/**
 * Jobs on the scheduler: submit, cancel, and ask how they are. States come
 * from accounting (`sacct`, which knows finished jobs and their exit
 * codes), with `squeue` for what accounting has not seen yet. One query
 * covers every job of a run, so a matrix of twenty variants costs the
 * scheduler the same as one.
 */
import { OperationError } from '../errors';
import { jobState, run, type SlurmEffects } from './slurm';

/** `sbatch --parsable ARGS SCRIPT` → the job id. */
export async function sbatch(
  script: string,
  args: string[],
  signal?: AbortSignal,
  fx: SlurmEffects = {},
): Promise<string> {
  const out = (await run('sbatch', ['--parsable', ...args, script], signal, fx)).trim();
  const id = out.split(';')[0];
  if (!/^\d+$/.test(id))
    throw new OperationError('slurm-failed', `sbatch answered ${JSON.stringify(out)}, not a job id`);
  return id;
}

/**
 * `sacct -P -n -X -o JobID,State,ExitCode` lines into states by job id.
 * A state such as `CANCELLED by 0` is cut to its first word; array tasks
 * keep their `123_4` ids; a pending array shows as `123_[0-2]` and is left
 * out (its tasks are not known yet).
 */
export function parseSacct(text: string): Map<string, { state: string; exitCode: string }> {
  const out = new Map<string, { state: string; exitCode: string }>();
  for (const line of text.split('\n')) {
    const [id, state, exitCode] = line.trim().split('|');
    if (!id || !state || !/^\d+(_\d+)?$/.test(id)) continue;
    out.set(id, { state: state.split(' ')[0], exitCode: exitCode ?? '' });
  }
  return out;
}

/** `squeue -h -o %i|%T` lines (id, state) for jobs still in the queue. */
export function parseSqueue(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [id, state] = line.trim().split('|');
    if (id && state && /^\d+(_\d+)?$/.test(id)) out.set(id, state);
  }
  return out;
}

export async function scancel(ids: string[], fx: SlurmEffects = {}): Promise<void> {
  if (ids.length) await run('scancel', ids, undefined, fx);
}

export interface JobStatus {
  state: string;
  exitCode?: string;
}

/**
 * Where each job is. Array tasks are asked for by their array's id and
 * answered per task; a job neither tool knows yet (just submitted, not
 * yet in accounting) is left out, and the caller keeps what it had.
 */
export async function jobStates(
  ids: string[],
  signal?: AbortSignal,
  fx: SlurmEffects = {},
): Promise<Map<string, JobStatus>> {
  const out = new Map<string, JobStatus>();
  if (!ids.length) return out;
  const parents = [...new Set(ids.map((id) => id.split('_')[0]))].join(',');
  const queued = parseSqueue(
    await run('squeue', ['-h', '-r', '-j', parents, '-o', '%i|%T'], signal, fx).catch(() => ''),
  );
  for (const [id, state] of queued) out.set(id, { state });
  // Accounting down is not the end: the controller remembers ended jobs for a while (MinJobAge).
  const acct = parseSacct(
    await run('sacct', ['-n', '-P', '-X', '-j', parents, '-o', 'JobID,State,ExitCode'], signal, fx).catch(() => ''),
  );
  // Accounting knows the exit code; the queue is fresher for jobs still in it.
  for (const [id, s] of acct) if (!queued.has(id)) out.set(id, s);
  for (const id of ids.filter((x) => !out.has(x))) {
    const shown = await run('scontrol', ['show', 'job', '-o', id], signal, fx).catch(() => '');
    const state = jobState(shown);
    if (state) out.set(id, { state, exitCode: /\bExitCode=(\d+:\d+)/.exec(shown)?.[1] });
  }
  return out;
}
