/**
 * The one effect for running programs: spawn one with its stdin and stdout
 * as streams and its stderr piped, learn its pid and how it ended, kill it.
 * The real one is node's child_process; unit tests script an in-memory one
 * (test/support/fake-processes.ts), so the logic above it (startChild,
 * the Slurm runner, mksquashfs's feeding) runs without programs.
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export interface SpawnOptions {
  stdin: 'pipe' | 'ignore';
  stdout: 'pipe' | 'ignore' | 'inherit';
  /** Always given: the child never inherits an environment by default. */
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * A started program, the part of node's ChildProcess sifkit uses. Events:
 * 'spawn' once it runs; 'error' when it could not be started (ENOENT with
 * no pid: not installed) or killed; 'exit' when it ended; 'close' when it
 * ended and its stdio streams are done.
 */
export interface RunningProcess {
  readonly pid?: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Null while it runs, or when a signal ended it. */
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal: NodeJS.Signals): boolean;
  on(event: 'spawn', listener: (...args: unknown[]) => void): this;
  on(event: 'error', listener: (e: Error) => void): this;
  on(event: 'exit' | 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once(event: 'spawn', listener: (...args: unknown[]) => void): this;
  once(event: 'error', listener: (e: Error) => void): this;
  once(event: 'exit' | 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
}

export interface Processes {
  spawn(cmd: string, args: string[], opts: SpawnOptions): RunningProcess;
}

/** Programs of this host, through node's child_process. */
export const realProcesses: Processes = {
  spawn(cmd, args, opts) {
    return spawn(cmd, args, { stdio: [opts.stdin, opts.stdout, 'pipe'], env: opts.env, cwd: opts.cwd });
  },
};
