import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireLock, readLock } from '../../src/tree/lock';
import { readAudit } from '../../src/tree/audit';
import { mutate } from '../../src/tree/mutate';
import { treeAt } from '../../src/tree/root';
import { OperationError } from '../../src/errors';
import { runCli } from '../support/cli';

jest.setTimeout(120_000);

const LOCK_JS = path.join(__dirname, '..', '..', 'dist', 'src', 'tree', 'lock.js');

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('close', r));
  return child.pid as number;
}

async function plantLock(dir: string, owner: Record<string, unknown> | undefined, ageMs = 0): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  if (owner)
    await fs.writeFile(
      path.join(dir, 'owner.json'),
      JSON.stringify({
        user: 'someone',
        command: 'sifkit stage x',
        since: '2026-01-01T00:00:00Z',
        token: 'feedfacefeedface',
        ...owner,
      }) + '\n',
    );
  const t = new Date(Date.now() - ageMs);
  await fs.utimes(owner ? path.join(dir, 'owner.json') : dir, t, t);
}

describe('tree lock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-lock-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('is whole from its first instant: owner.json is in the directory the moment it has its name', async () => {
    const lock = path.join(dir, 'lock');
    const held = await acquireLock(lock, { command: 'test' });
    expect(JSON.parse(await fs.readFile(path.join(lock, 'owner.json'), 'utf8'))).toEqual(held.owner);
    // No candidate left beside it.
    expect((await fs.readdir(dir)).sort()).toEqual(['lock']);
    await held.release();
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('a dead owner on this host is broken at once, whatever its heartbeat says', async () => {
    const lock = path.join(dir, 'lock');
    await plantLock(lock, { host: os.hostname(), pid: await deadPid() });
    expect(await readLock(lock, 60_000)).toMatchObject({ live: false, why: expect.stringMatching(/is gone/) });
    const t0 = Date.now();
    const held = await acquireLock(lock, { command: 'test', waitMs: 0, staleMs: 60_000 });
    expect(Date.now() - t0).toBeLessThan(60_000);
    await held.release();
  });

  it('another host: live while it beats, broken once its heartbeat is older than the stale timeout', async () => {
    const lock = path.join(dir, 'lock');
    await plantLock(lock, { host: 'other-node', pid: 1 });
    await expect(acquireLock(lock, { command: 'test', waitMs: 0, staleMs: 60_000 })).rejects.toMatchObject({
      code: 'locked',
      message: expect.stringMatching(/someone@other-node pid 1 .*heartbeat .* s ago, live/),
    });
    await plantLock(lock, { host: 'other-node', pid: 1 }, 120_000);
    const held = await acquireLock(lock, { command: 'test', waitMs: 0, staleMs: 60_000 });
    expect((await readLock(lock))?.owner?.token).toBe(held.owner.token);
    await held.release();
  });

  it('an ownerless or unreadable lock (a hand-made or old-style one) is judged by its age, never fresh forever', async () => {
    const lock = path.join(dir, 'lock');
    await plantLock(lock, undefined, 120_000);
    expect(await readLock(lock, 60_000)).toMatchObject({ live: false });
    await (await acquireLock(lock, { command: 'test', waitMs: 0, staleMs: 60_000 })).release();
    await fs.mkdir(lock);
    await fs.writeFile(path.join(lock, 'owner.json'), '{"host": "x", "pi');
    const old = new Date(Date.now() - 120_000);
    await fs.utimes(path.join(lock, 'owner.json'), old, old);
    expect(await readLock(lock, 60_000)).toMatchObject({ live: false, owner: undefined });
  });

  it('a holder broken as stale never removes its successor’s lock on release', async () => {
    const lock = path.join(dir, 'lock');
    // A holder whose heartbeat never comes in time (a stopped process, say).
    const a = await acquireLock(lock, { command: 'a', staleMs: 300, heartbeatMs: 3_600_000 });
    const b = await acquireLock(lock, { command: 'b', staleMs: 300, heartbeatMs: 100, waitMs: 60_000 });
    await a.release();
    expect((await readLock(lock, 60_000))?.owner?.token).toBe(b.owner.token);
    await b.release();
    expect(await readLock(lock)).toBeUndefined();
  });

  it('six processes racing over a dead owner’s lock, ten turns each: never two holders at once', async () => {
    const lock = path.join(dir, 'lock');
    const counter = path.join(dir, 'counter');
    await fs.writeFile(counter, '0');
    await plantLock(lock, { host: os.hostname(), pid: await deadPid() });
    // Read, yield, write: a lost update shows two holders overlapped.
    const script = `
      const fs = require('node:fs/promises');
      const { acquireLock } = require(${JSON.stringify(LOCK_JS)});
      (async () => {
        for (let i = 0; i < 10; i++) {
          const l = await acquireLock(${JSON.stringify(lock)}, { command: 'race', waitMs: 60000 });
          const n = Number(await fs.readFile(${JSON.stringify(counter)}, 'utf8'));
          await new Promise((r) => setImmediate(r));
          await fs.writeFile(${JSON.stringify(counter)}, String(n + 1));
          await l.release();
        }
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const codes = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<number | null>((resolve) => {
            const c = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
            c.on('close', resolve);
          }),
      ),
    );
    expect(codes).toEqual(Array(6).fill(0));
    expect(await fs.readFile(counter, 'utf8')).toBe('60');
    expect((await fs.readdir(dir)).sort()).toEqual(['counter']);
  });
});

describe('the lock as status and verify show it', () => {
  let root: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-lock-tree-'));
    for (const d of ['tested-containers', 'sif-images', 'easybuild-sif-images', '.sifkit/ledger'])
      await fs.mkdir(path.join(root, d), { recursive: true });
  });
  afterEach(() => fs.rm(root, { recursive: true, force: true }));

  it('a dead holder: verify names it and is not clean, verify --repair breaks it, then clean', async () => {
    const pid = await deadPid();
    await plantLock(path.join(root, '.sifkit', 'lock'), { host: os.hostname(), pid });
    const st = await runCli(['status', '--root', root, '--json']);
    expect(JSON.parse(st.stdout).lock).toMatchObject({ live: false, owner: { pid } });
    const v = await runCli(['verify', '--root', root]);
    expect(v.code).toBe(1);
    expect(v.stdout).not.toMatch(/tree is clean/);
    // Kind and path on one line, the detail wrapped beneath: compared with its line breaks folded.
    expect(v.stdout.replace(/\s+/g, ' ')).toMatch(
      new RegExp(`stale-lock \\.sifkit/lock .*pid ${pid}.*stale: process ${pid} on this host is gone`),
    );
    const r = await runCli(['verify', '--repair', '--root', root, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).problems).toEqual([
      expect.objectContaining({ kind: 'stale-lock', repaired: 'broken' }),
    ]);
    const again = await runCli(['verify', '--root', root]);
    expect({ code: again.code, out: again.stdout }).toEqual({ code: 0, out: 'tree is clean\n' });
  });

  it('a live holder on another host: status and verify show who, how old, live; verify --repair waits, then refuses naming it', async () => {
    await plantLock(path.join(root, '.sifkit', 'lock'), { host: 'uan01', pid: 4242 });
    const st = await runCli(['status', '--root', root]);
    expect(st.stdout).toMatch(
      /^lock: held by someone@uan01 pid 4242 \(sifkit stage x, since .*\), heartbeat \d+\.\d s ago, live$/m,
    );
    const v = await runCli(['verify', '--root', root, '--json']);
    expect(JSON.parse(v.stdout)).toMatchObject({
      ok: true,
      problems: [],
      lock: { live: true, owner: { host: 'uan01' } },
    });
    // Something to repair (a file not readable by all), so repair needs the lock. (Temp
    // files are not judged while a live holder may be writing them.)
    await fs.writeFile(path.join(root, 'tested-containers', 'lumi-x-dockerhash-aaaaaaaaaaaa.sif'), '', { mode: 0o600 });
    const r = await runCli(['verify', '--repair', '--root', root], { env: { SIFKIT_LOCK_WAIT_MS: '0' } });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/locked by someone@uan01 pid 4242/);
  });

  it('nothing to do changes nothing: verify --repair on a clean tree and retire --purge/--apply on an empty root make no directory and no audit line', async () => {
    const empty = path.join(root, 'empty');
    await fs.mkdir(empty);
    const policy = path.join(root, 'policy.yaml');
    await fs.writeFile(
      policy,
      'directories:\n  tested-containers: { keep_newest: 1, series: [stem], keep_younger_than_days: 0 }\n  easybuild-sif-images: { keep_newest: 1, series: [stem], keep_younger_than_days: 0 }\nquarantine_days: 0\n',
    );
    for (const args of [
      ['retire', '--purge'],
      ['retire', '--apply'],
      ['verify', '--repair'],
    ]) {
      const r = await runCli(
        [...args, '--policy', policy, '--root', empty].filter(
          (a, i, all) => args[0] === 'retire' || (a !== '--policy' && all[i - 1] !== '--policy'),
        ),
      );
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
      expect({ args, entries: await fs.readdir(empty) }).toEqual({ args, entries: [] });
    }
    expect((await runCli(['verify', '--repair', '--root', root])).code).toBe(0);
    expect(await readAudit(path.join(root, '.sifkit', 'audit.log'))).toEqual([]);
  });
});

describe('mutate: a failure after changes began', () => {
  let root: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-mutate-'));
  });
  afterEach(() => fs.rm(root, { recursive: true, force: true }));

  it('rolls back when every change can be undone, and says so', async () => {
    const tree = treeAt(root);
    const file = path.join(root, 'made');
    const p = mutate(tree, 'test-action', undefined, async (changes) => {
      await fs.writeFile(file, 'x');
      changes.made(() => fs.rm(file));
      throw new OperationError('boom', 'the second step failed');
    });
    await expect(p).rejects.toMatchObject({
      code: 'boom',
      message: 'the second step failed; its changes were rolled back, the tree is as before',
    });
    await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readAudit(tree.audit)).toEqual([
      expect.objectContaining({
        action: 'test-action',
        outcome: 'failed',
        error: expect.stringMatching(/rolled back/),
      }),
    ]);
    expect(await readLock(tree.lock)).toBeUndefined();
  });

  it('says what finishes the job when a change cannot be undone', async () => {
    const tree = treeAt(root);
    const p = mutate(
      tree,
      'test-action',
      undefined,
      async (changes) => {
        changes.made();
        throw Object.assign(new Error('disk gone'), { code: 'EIO', syscall: 'write', path: '/x' });
      },
      { resume: 'run the same command again to finish it' },
    );
    await expect(p).rejects.toMatchObject({
      message:
        'cannot write /x: input/output error (EIO); the tree was left partly changed: run the same command again to finish it',
    });
  });

  it('a success with nothing changed writes no audit line', async () => {
    const tree = treeAt(root);
    expect(await mutate(tree, 'noop', undefined, async () => ({ value: 7, files: [] }))).toBe(7);
    expect(await readAudit(tree.audit)).toEqual([]);
  });
});
