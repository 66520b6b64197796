import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { InterruptedError, OperationError, errnoCode, isSifkitError } from '../errors';
import { realClock, type Clock } from './clock';
import { realProcesses, type Processes, type RunningProcess } from './processes';

/** Whether a process of this host runs (EPERM: it does, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}

/** Whether `pid` on `host` is known dead: only a process of this host can be checked. */
export function deadOnThisHost(host: string | undefined, pid: number): boolean {
  return host === os.hostname() && !pidAlive(pid);
}

/**
 * A process's peak resident memory so far (VmHWM, a high-water mark, so
 * the last reading before exit is the peak), in MiB; undefined once it has
 * exited or where there is no /proc.
 */
export function peakRssMiB(pid: number | undefined): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** This host's name as it goes into file names: letters, digits, dots and underscores. */
export function hostTag(): string {
  return os.hostname().replace(/[^A-Za-z0-9._]/g, '_');
}

export interface ChildOptions {
  signal?: AbortSignal;
  stdin?: 'pipe' | 'ignore';
  stdout?: 'pipe' | 'ignore' | 'inherit';
  /** Killed (SIGKILL) after this long; none when absent. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How messages name the command (default: the command). */
  label?: string;
  /** The error code of a failed run (default `${label}-failed`). */
  failCode?: string;
  /** The error when the command is not installed (default: says so). */
  missing?: { code: string; message?: string; hint?: string };
  /** A hint added to the failure error. */
  hint?: string;
  /** Also copy the child's stderr to ours as it comes (a long tool's own progress). */
  echoStderr?: boolean;
  /** Where programs run (default: this host's). */
  processes?: Processes;
  /** What times the limit (default: the host's clock). */
  clock?: Clock;
}

export interface Child {
  child: RunningProcess;
  stdin: Writable | null;
  stdout: Readable | null;
  /** Resolves when the child exited 0; rejects with a one-line OperationError naming its last stderr line. */
  done: Promise<void>;
  /** The last lines of its stderr (bounded). */
  stderrTail: () => string;
}

/** Bytes of stderr kept for the message: the end is what explains. */
const STDERR_TAIL = 8192;

/** The last non-empty line of a text, for a one-line message. */
export function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? ''
  );
}

const seconds = (ms: number) => (ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000)));

/** How a finished child's failure reads (pure). */
export function childFailure(
  label: string,
  exit: { code: number | null; signal: NodeJS.Signals | null; timedOutMs?: number },
  stderr: string,
): string {
  const said = lastLine(stderr);
  const why =
    exit.timedOutMs !== undefined
      ? `timed out after ${seconds(exit.timedOutMs)} s`
      : exit.code !== null
        ? `failed (exit ${exit.code})`
        : `was killed by ${exit.signal}`;
  return `${label} ${why}: ${said || 'nothing on stderr'}`;
}

/** A pipe the child closed: its exit status says why, not the write that found out. */
function brokenPipe(e: unknown): boolean {
  const c = errnoCode(e);
  return c === 'EPIPE' || c === 'ECONNRESET' || c === 'ERR_STREAM_DESTROYED';
}

/**
 * The one way sifkit runs a child process: stdin and stdout as streams
 * when asked, stderr kept as a bounded tail, killed (SIGKILL) on abort or
 * timeout, and its failure an OperationError that quotes its last stderr
 * line. A broken pipe on its stdin or stdout never escapes as a crash.
 */
export function startChild(cmd: string, args: string[], opts: ChildOptions = {}): Child {
  const label = opts.label ?? path.basename(cmd);
  const child = (opts.processes ?? realProcesses).spawn(cmd, args, {
    stdin: opts.stdin ?? 'ignore',
    stdout: opts.stdout ?? 'ignore',
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-STDERR_TAIL);
    if (opts.echoStderr) process.stderr.write(c);
  });
  let streamError: unknown;
  const onStreamError = (e: unknown) => {
    if (!brokenPipe(e)) streamError ??= e;
  };
  child.stdin?.on('error', onStreamError);
  child.stdout?.on('error', onStreamError);
  let timedOut = false;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const cancelTimer = opts.timeoutMs
    ? (opts.clock ?? realClock).setTimer(opts.timeoutMs, () => ((timedOut = true), kill()))
    : undefined;
  const onAbort = () => kill();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) kill();
  const done = new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (e?: Error) => {
      if (settled) return;
      settled = true;
      cancelTimer?.();
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted) reject(isSifkitError(opts.signal.reason) ? opts.signal.reason : new InterruptedError());
      else if (e) reject(e);
      else resolve();
    };
    child.on('error', (e) => {
      if (errnoCode(e) === 'ENOENT' && child.pid === undefined) {
        const m = opts.missing;
        settle(
          new OperationError(
            m?.code ?? `no-${label}`,
            m?.message ?? `${label} is not installed here (${cmd} not found)`,
            { hint: m?.hint, cause: e },
          ),
        );
      } else
        settle(
          new OperationError(opts.failCode ?? `${label}-failed`, `${label} could not be run: ${(e as Error).message}`, {
            cause: e,
          }),
        );
    });
    child.on('close', (code, signal) => {
      if (code === 0 && !streamError) return settle();
      if (code === 0)
        return settle(
          new OperationError(opts.failCode ?? `${label}-failed`, `${label}: ${(streamError as Error).message}`, {
            cause: streamError,
          }),
        );
      settle(
        new OperationError(
          opts.failCode ?? `${label}-failed`,
          childFailure(label, { code, signal, timedOutMs: timedOut ? opts.timeoutMs : undefined }, stderr),
          { hint: opts.hint },
        ),
      );
    });
  });
  return { child, stdin: child.stdin, stdout: child.stdout, done, stderrTail: () => stderr };
}

/** Stdout kept by runChild: the short answers of sbatch, squeue, scontrol. */
const MAX_STDOUT = 1 << 20;

/** Runs a command with a short answer and returns its stdout (at most 1 MiB). */
export async function runChild(
  cmd: string,
  args: string[],
  opts: Omit<ChildOptions, 'stdout' | 'stdin'> = {},
): Promise<string> {
  const c = startChild(cmd, args, { ...opts, stdout: 'pipe' });
  let out = '';
  c.stdout?.on('data', (b: Buffer) => {
    if (out.length < MAX_STDOUT) out += b.toString();
  });
  await c.done;
  return out;
}
