/**
 * Slurm's answers read (pure): each command's text split into lines and
 * fields, each line checked by its schema (validate/schemas/slurm.ts). A
 * line that does not fit is a failure in one line naming the command, the
 * line and the field (`bad-slurm-answer`, exit 1).
 */
import type { z } from 'zod';
import { OperationError } from '../errors';
import { formatIssue } from '../validate/schema';
import { pendingArrayId, sacctLine, sbatchAnswer, scontrolJobLine, squeueLine } from '../validate/schemas/slurm';

/** Where a job is; the exit code (`exit:signal`) once Slurm knows it. */
export interface JobStatus {
  state: string;
  exitCode?: string;
}

function fits<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new OperationError('bad-slurm-answer', formatIssue(r.error.issues[0], value, what), {
    hint: 'Slurm (or a wrapper in front of its commands) printed something sifkit does not read; run the command by hand',
  });
}

/** The non-empty lines of an answer, with their 1-based numbers. */
function lines(text: string): Array<{ n: number; line: string }> {
  return text
    .split('\n')
    .map((line, i) => ({ n: i + 1, line: line.trim() }))
    .filter((l) => l.line !== '');
}

/** Fields of a `|`-separated line (`-P`, `%i|%T`) by name. */
function fields(names: string[], line: string): Record<string, string | undefined> {
  const parts = line.split('|');
  return Object.fromEntries(names.map((k, i) => [k, parts[i]]));
}

/** `sbatch --parsable` → the job id. */
export function parseSbatch(text: string): string {
  const out = text.trim();
  const [jobId, cluster, ...rest] = out.split(';');
  const r = sbatchAnswer.safeParse({ jobId, cluster });
  if (!r.success || rest.length)
    throw new OperationError('bad-slurm-answer', `sbatch answered ${JSON.stringify(out)}, not a job id`);
  return r.data.jobId;
}

/**
 * `squeue -h -r -o %i|%T` → states by job id. Array tasks have their
 * `123_4` ids; an array's pending tasks in one `123_[0-2]` line are left
 * out (their tasks are not known yet).
 */
export function parseSqueue(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const { n, line } of lines(text)) {
    const f = fields(['JobID', 'State'], line);
    if (pendingArrayId.test(f.JobID ?? '')) continue;
    const l = fits(squeueLine, f, `squeue's answer, line ${n}`);
    out.set(l.JobID, l.State);
  }
  return out;
}

/** `squeue -h -j ID -o %T` → the job's states (one per line: an array's tasks each have one). */
export function parseQueueStates(text: string): string[] {
  return lines(text).map(({ n, line }) => fits(squeueLine.shape.State, line, `squeue's answer, line ${n}`));
}

/**
 * `sacct -n -P -X -o JobID,State,ExitCode` → states by job id. A state such
 * as `CANCELLED by 0` is cut to its first word; pending arrays are left out
 * as in squeue's answer.
 */
export function parseSacct(text: string): Map<string, Required<JobStatus>> {
  const out = new Map<string, Required<JobStatus>>();
  for (const { n, line } of lines(text)) {
    const f = fields(['JobID', 'State', 'ExitCode'], line);
    if (pendingArrayId.test(f.JobID ?? '')) continue;
    const l = fits(sacctLine, f, `sacct's answer, line ${n}`);
    out.set(l.JobID, { state: l.State.split(' ')[0], exitCode: l.ExitCode });
  }
  return out;
}

/**
 * `scontrol show job -o ID` → the job's state and exit code, from its
 * first line (an array's id gives a line per task); nothing for an empty
 * answer (a job the controller has forgotten).
 */
export function parseScontrolJob(text: string): JobStatus | undefined {
  const first = lines(text)[0];
  if (!first) return undefined;
  const f: Record<string, string> = {};
  for (const word of first.line.split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq > 0 && !(word.slice(0, eq) in f)) f[word.slice(0, eq)] = word.slice(eq + 1);
  }
  const l = fits(scontrolJobLine, f, "scontrol's answer");
  return { state: l.JobState, exitCode: l.ExitCode };
}
