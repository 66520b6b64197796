/**
 * The one Slurm client: every `sbatch`, `squeue`, `sacct`, `scontrol` and
 * `scancel` sifkit runs goes through here, for the test runner
 * (checks/slurm.ts) and the `--on slurm` executor alike. Each answer is
 * read by its schema (slurm/answers.ts); a failing command is one line, a
 * controller that does not answer is `slurm-down`.
 */
import { OperationError } from '../errors';
import type { Clock } from '../util/clock';
import { runChild } from '../util/process';
import type { Processes } from '../util/processes';
import { parseQueueStates, parseSacct, parseSbatch, parseScontrolJob, parseSqueue, type JobStatus } from './answers';

export type { JobStatus } from './answers';

/** Where the Slurm commands run and what times their polls: the host's unless a test gives its own. */
export interface SlurmEffects {
  processes?: Processes;
  clock?: Clock;
}

/** The controller cannot be reached: Slurm itself is down or misconfigured, not the job. */
const UNREACHABLE = /unable to contact slurm controller|connect(ion)? (failure|refused)|Zero Bytes were transmitted/i;

/** Whether a Slurm command failed because the controller does not answer. */
export function controllerDown(e: unknown): boolean {
  return e instanceof OperationError && e.code === 'slurm-down';
}

/** One Slurm command, its failure one line. */
async function run(cmd: string, args: string[], signal?: AbortSignal, fx: SlurmEffects = {}): Promise<string> {
  try {
    return await runChild(cmd, args, {
      signal,
      processes: fx.processes,
      clock: fx.clock,
      timeoutMs: 60_000,
      failCode: 'slurm-failed',
      missing: {
        code: 'no-slurm',
        message: `${cmd} is not installed here`,
        hint: 'run on a Slurm login node, or use --runner local',
      },
    });
  } catch (e) {
    if (e instanceof OperationError && e.code === 'slurm-failed' && UNREACHABLE.test(e.message)) {
      throw new OperationError('slurm-down', `Slurm does not answer: ${e.message}`, {
        hint: 'is slurmctld running (scontrol ping)? SLURM_CONF names the controller; or use --runner local',
        cause: e,
      });
    }
    throw e;
  }
}

/** `sbatch --parsable ARGS SCRIPT` → the job id. */
export async function submitJob(
  script: string,
  args: string[],
  signal?: AbortSignal,
  fx: SlurmEffects = {},
): Promise<string> {
  return parseSbatch(await run('sbatch', ['--parsable', ...args, script], signal, fx));
}

/** `scancel` of every job named, in one command; nothing is run for none. */
export async function cancelJobs(ids: string[], fx: SlurmEffects = {}): Promise<void> {
  if (ids.length) await run('scancel', ids, undefined, fx);
}

/**
 * One job as the controller shows it; nothing when it has forgotten the
 * job (scontrol fails, or says nothing). A controller that is down, or
 * Ctrl-C, is an error; so is an answer that does not read.
 */
export async function showJob(id: string, signal?: AbortSignal, fx: SlurmEffects = {}): Promise<JobStatus | undefined> {
  const shown = await run('scontrol', ['show', 'job', '-o', id], signal, fx).catch((e) => {
    if (controllerDown(e) || signal?.aborted) throw e;
    return '';
  });
  return parseScontrolJob(shown);
}

/** Whether the queue still holds the job (`squeue -h -j ID -o %T`); a controller that is down, or Ctrl-C, is an error. */
export async function inQueue(id: string, signal?: AbortSignal, fx: SlurmEffects = {}): Promise<boolean> {
  const q = await run('squeue', ['-h', '-j', id, '-o', '%T'], signal, fx).catch((e) => {
    if (controllerDown(e) || signal?.aborted) throw e;
    return '';
  });
  return parseQueueStates(q).length > 0;
}

/**
 * Where each job is. States come from accounting (`sacct`, which knows
 * finished jobs and their exit codes), with `squeue` for what accounting
 * has not seen yet, and `scontrol` for what neither knows. One query
 * covers every job of a run, so a matrix of twenty variants costs the
 * scheduler the same as one. Array tasks are asked for by their array's
 * id and answered per task; a job no tool knows yet (just submitted, not
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
    const shown = parseScontrolJob(await run('scontrol', ['show', 'job', '-o', id], signal, fx).catch(() => ''));
    if (shown) out.set(id, shown);
  }
  return out;
}
