/**
 * The local runner: each check in a fresh container of the image through
 * the Engine API, with no network. Its output and exit status are judged
 * like the Slurm runner's.
 */
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { throwIfAborted } from '../errors';
import { judge, type CheckResult } from './judge';
import { checkScript, type LocalProfile } from './profile';
import type { Check } from './spec';

export async function runLocal(docker: Docker, image: string, checks: Check[], profile: LocalProfile, opts: { signal?: AbortSignal; labels?: Record<string, string>; onCheck?: (r: CheckResult) => void } = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    throwIfAborted(opts.signal);
    const started = Date.now();
    const container = await docker.createContainer({
      Image: image,
      Cmd: ['/bin/sh', '-c', checkScript(check, profile.launcher)],
      // No terminal: with one, the engine can end the attach stream before it
      // has copied the last bytes of a process that exits at once (a lost
      // final line was seen under load). The two streams are demultiplexed
      // into one collector, in the order the engine sends them.
      Tty: false,
      Labels: opts.labels,
      HostConfig: { NetworkMode: 'none', ShmSize: 256 << 20 },
    } as Docker.ContainerCreateOptions);
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
      const output = collectOutput(docker, await container.attach({ stream: true, stdout: true, stderr: true }));
      output.catch(() => undefined); // awaited below; a failed start must not leave it unhandled
      await container.start();
      const status = (await container.wait()) as { StatusCode: number };
      const text = (await output).replace(/\r\n/g, '\n');
      const r = judge(check, { exitCode: status.StatusCode, output: text, durationMs: Date.now() - started, outcome });
      results.push(r);
      opts.onCheck?.(r);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      await container.remove({ force: true }).catch(() => undefined);
    }
  }
  throwIfAborted(opts.signal);
  return results;
}

/** Check output is small, but a runaway one must not fill memory: keep the tail. */
const OUTPUT_LIMIT = 4 << 20;

function collectOutput(docker: Docker, stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    const sink = new Writable({
      write(c: Buffer, _enc, cb) {
        chunks.push(c);
        size += c.length;
        if (size > 2 * OUTPUT_LIMIT) {
          const all = Buffer.concat(chunks);
          chunks = [all.subarray(all.length - OUTPUT_LIMIT)];
          size = OUTPUT_LIMIT;
        }
        cb();
      },
    });
    docker.modem.demuxStream(stream, sink, sink);
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}
