/**
 * The local runner: each check in a fresh container of the image through
 * the Engine API, with no network. Its output and exit status are judged
 * like the Slurm runner's.
 */
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
      Tty: true, // one stream, in order, as a terminal would show it
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
      await container.start();
      const status = (await container.wait()) as { StatusCode: number };
      const logs = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
      const r = judge(check, { exitCode: status.StatusCode, output: logs.toString('utf8').replace(/\r\n/g, '\n'), durationMs: Date.now() - started, outcome });
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
