import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

export const CLI = path.join(__dirname, '..', '..', 'dist', 'src', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a user would (npm test builds it first). */
export function runCli(
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    onStderr?: (s: string, kill: (sig: NodeJS.Signals) => void) => void;
  } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, CI: '1', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      opts.onStderr?.(stderr, (sig) => child.kill(sig));
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Runs each argument list as its own CLI process, as `runCli` does, `at`
 * of them at once: for short commands a process's start-up is most of its
 * time, and one at a time leaves all but one core idle. Results in order.
 */
export async function runCliEach(list: string[][], at = os.availableParallelism()): Promise<CliResult[]> {
  const results: CliResult[] = new Array(list.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const i = next++;
      results[i] = await runCli(list[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(at, list.length) }, worker));
  return results;
}
