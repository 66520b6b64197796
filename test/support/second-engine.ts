/**
 * A second, private Docker engine for multi-engine tests: its own socket,
 * data and exec roots, so the user's engine is never touched. The busybox
 * base image is copied into it with save | load.
 */
import { execSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

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
  const child = spawn('dockerd', ['--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'dockerd.pid'), '-H', address, '--iptables=false', '--ip6tables=false', '--bridge=none'], { stdio: ['ignore', log.fd, log.fd], detached: true });
  child.unref();
  for (let i = 0; i < 60; i++) {
    try {
      execSync(`docker -H ${address} info`, { stdio: 'ignore' });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 500));
      if (i === 59) throw new Error(`the second dockerd did not start: ${await fs.readFile(path.join(dir, 'dockerd.log'), 'utf8')}`);
    }
  }
  execSync(`docker save sifkit-test/busybox:latest | docker -H ${address} load`, { stdio: 'ignore' });
  return {
    address,
    dir,
    async stop() {
      child.kill('SIGTERM');
      for (let i = 0; i < 40; i++) {
        try {
          process.kill(child.pid!, 0);
          await new Promise((r) => setTimeout(r, 250));
        } catch {
          break;
        }
      }
      await log.close();
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
