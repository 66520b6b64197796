/**
 * A second, private Docker engine for multi-engine tests: its own socket,
 * data and exec roots, so the user's engine is never touched. The busybox
 * base image is copied into it with save | load.
 */
import { execSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { until } from './poll';

export interface SecondEngine {
  address: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startSecondEngine(): Promise<SecondEngine> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-engine2-'));
  const sock = path.join(dir, 'docker.sock');
  const address = `unix://${sock}`;
  const log = await fs.open(path.join(dir, 'dockerd.log'), 'w');
  const child = spawn(
    'dockerd',
    [
      '--data-root',
      path.join(dir, 'data'),
      '--exec-root',
      path.join(dir, 'exec'),
      '--pidfile',
      path.join(dir, 'dockerd.pid'),
      '-H',
      address,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
    ],
    { stdio: ['ignore', log.fd, log.fd], detached: true },
  );
  child.unref();
  // Polled until it answers or dies (no guessed cap: the test's timeout bounds it).
  const answers = () => {
    try {
      execSync(`docker -H ${address} info`, { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  await until(() => answers() || child.exitCode !== null, 250);
  if (!answers())
    throw new Error(`the second dockerd did not start: ${await fs.readFile(path.join(dir, 'dockerd.log'), 'utf8')}`);
  execSync(`docker save sifkit-test/busybox:latest | docker -H ${address} load`, { stdio: 'ignore' });
  return {
    address,
    dir,
    async stop() {
      child.kill('SIGTERM');
      await until(() => {
        try {
          process.kill(child.pid!, 0);
          return false;
        } catch {
          return true;
        }
      }, 250);
      await log.close();
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
