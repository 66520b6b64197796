/**
 * A `compat docker-daemon:` check killed with -9 cannot remove the export
 * container it made; the next check does (its label names a process that
 * is gone from this host), and leaves a live run's container alone.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Docker from 'dockerode';
import { COMPAT_LABEL } from '../../src/compat/image';
import { CLI, runCli } from '../support/cli';
import { until } from '../support/poll';

jest.setTimeout(600_000);

const docker = new Docker();

async function labelled(value?: string): Promise<string[]> {
  const label = value ? `${COMPAT_LABEL}=${value}` : COMPAT_LABEL;
  return (await docker.listContainers({ all: true, filters: { label: [label] } })).map((c) => c.Id);
}

describe('compat of an engine image after a kill -9', () => {
  let dir: string;
  let snap: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h40-compat-kill-'));
    snap = path.join(dir, 'here.json');
    const r = await runCli(['host', 'snapshot', '--bind', '/usr/lib/x86_64-linux-gnu/libz.so.1', '-o', snap]);
    expect(r.code).toBe(0);
  });

  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('leaves a container that the next check removes', async () => {
    // A stand-in for another live run on this host: its process (this test) is alive, so it stays.
    const live = await docker.createContainer({
      Image: 'sifkit-test/busybox:latest',
      Entrypoint: ['/sifkit-export-only'],
      Labels: { [COMPAT_LABEL]: `${os.hostname()}:${process.pid}` },
    });
    try {
      const child = spawn(
        process.execPath,
        [CLI, 'compat', 'docker-daemon:sifkit-test/debian-bookworm:mpi', '--host', snap, '--json'],
        { env: { ...process.env, CI: '1' }, stdio: 'ignore' },
      );
      const mine = `${os.hostname()}:${child.pid}`;
      // Killed once its export container exists (polled, not a guessed time).
      await until(async () => (await labelled(mine)).length > 0, 25);
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
      expect(await labelled(mine)).toHaveLength(1);

      const again = await runCli(['compat', 'docker-daemon:sifkit-test/busybox:latest', '--host', snap, '--json']);
      expect(again.code).toBe(0);
      expect(await labelled(mine)).toEqual([]);
      expect(await labelled(`${os.hostname()}:${process.pid}`)).toEqual([live.id]);
    } finally {
      await live.remove({ force: true });
    }
  });
});
