/**
 * The local runner: each check in a fresh container of the image through
 * the Engine API, with no network. Its output and exit status are judged
 * like the Slurm runner's.
 */
import type { Readable } from 'node:stream';
import type { ImageEngine } from '../engine/engine';
import { throwIfAborted } from '../errors';
import { judge, type CheckResult } from './judge';
import type { Check } from '../recipe/checks';
import type { LocalProfile } from '../recipe/testing';
import { checkScript } from './profile';

export async function runLocal(
  engine: ImageEngine,
  image: string,
  checks: Check[],
  profile: LocalProfile,
  opts: { signal?: AbortSignal; labels?: Record<string, string>; onCheck?: (r: CheckResult) => void } = {},
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    throwIfAborted(opts.signal);
    const started = Date.now();
    // The engine gives stdout and stderr as one stream, in the order it sends them.
    const container = await engine.createContainer({
      image,
      cmd: ['/bin/sh', '-c', checkScript(check, profile.launcher)],
      labels: opts.labels,
      network: 'none',
      shmSizeBytes: 256 << 20,
    });
    let outcome: 'timeout' | 'cancelled' | undefined;
    const stop = (why: 'timeout' | 'cancelled') => {
      outcome = outcome ?? why;
      container.kill().catch(() => undefined);
    };
    const timer = setTimeout(() => stop('timeout'), check.timeoutSeconds * 1000);
    const onAbort = () => stop('cancelled');
    opts.signal?.addEventListener('abort', onAbort);
    try {
      // Attached before start and read to its end: the logs endpoint read
      // right after wait() returns can miss the last lines still in flight.
      const output = collectOutput(await container.attach());
      output.catch(() => undefined); // awaited below; a failed start must not leave it unhandled
      await container.start();
      const exitCode = await container.wait();
      const text = (await output).replace(/\r\n/g, '\n');
      const r = judge(check, { exitCode, output: text, durationMs: Date.now() - started, outcome });
      results.push(r);
      opts.onCheck?.(r);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      await container.remove().catch(() => undefined);
    }
  }
  throwIfAborted(opts.signal);
  return results;
}

/** Check output is small, but a runaway one must not fill memory: keep the tail. */
const OUTPUT_LIMIT = 4 << 20;

function collectOutput(stream: Readable): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (size > 2 * OUTPUT_LIMIT) {
        const all = Buffer.concat(chunks);
        chunks = [all.subarray(all.length - OUTPUT_LIMIT)];
        size = OUTPUT_LIMIT;
      }
    });
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}
