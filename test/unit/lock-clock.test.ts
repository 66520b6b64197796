/**
 * The tree lock's waiting, staleness and heartbeat on a manual clock: a
 * held lock refused after the wait, another host's silent lock broken
 * once its heartbeat is older than the stale timeout, our heartbeat
 * keeping ours fresh. The lock itself is real directories in a temp dir.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RefusedError } from '../../src/errors';
import { acquireLock, readLock } from '../../src/tree/lock';
import { FakeClock } from '../support/fake-clock';
import { until } from '../support/poll';

let dir: string;
let lock: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-lock-unit-'));
  lock = path.join(dir, 'lock');
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A lock held by a process of another host (its liveness cannot be checked here), last heard of at `at`. */
async function foreignLock(at: number): Promise<void> {
  await fs.mkdir(lock);
  const file = path.join(lock, 'owner.json');
  await fs.writeFile(
    file,
    JSON.stringify({
      host: 'uan02.lumi',
      pid: 4242,
      user: 'other',
      command: 'sifkit promote',
      since: new Date(at).toISOString(),
      token: 'feedfacefeedface',
    }),
  );
  await fs.utimes(file, new Date(at), new Date(at));
}

/** Moves the clock on by the waiter's pauses until `done` holds. */
async function waitOut(clock: FakeClock, done: () => boolean): Promise<void> {
  await until(() => {
    if (clock.sleeping()) clock.next();
    return done();
  }, 1);
}

describe('tree lock on a manual clock', () => {
  it('a live lock held elsewhere: waits, then refuses after the wait, naming the holder', async () => {
    const start = Date.UTC(2026, 5, 1);
    const clock = new FakeClock(start);
    await foreignLock(start);
    let settled = false;
    const p = acquireLock(lock, { command: 't', waitMs: 5000, staleMs: 60_000, clock }).finally(() => (settled = true));
    const refused = expect(p).rejects.toBeInstanceOf(RefusedError);
    await waitOut(clock, () => settled);
    await refused;
    await expect(p).rejects.toMatchObject({
      code: 'locked',
      message: expect.stringContaining('other@uan02.lumi pid 4242 (sifkit promote'),
    });
    expect(clock.now() - start).toBeGreaterThan(5000);
    expect(clock.now() - start).toBeLessThan(6000);
  });

  it("another host's lock with no heartbeat for the stale timeout is broken, and ours taken", async () => {
    const start = Date.UTC(2026, 5, 1);
    const clock = new FakeClock(start);
    await foreignLock(start);
    expect(await readLock(lock, 60_000, clock)).toMatchObject({ live: true, ageMs: 0 });
    let got = false;
    const p = acquireLock(lock, { command: 'mine', waitMs: 600_000, staleMs: 60_000, clock }).then(
      (l) => ((got = true), l),
    );
    await waitOut(clock, () => got || clock.now() - start > 60_000);
    const held = await p;
    expect(clock.now() - start).toBeGreaterThan(60_000);
    expect(clock.now() - start).toBeLessThan(61_000);
    expect(held.owner.command).toBe('mine');
    await held.release();
    expect(await readLock(lock, 60_000, clock)).toBeUndefined();
  });

  it('our heartbeat touches the owner file on the clock, so our lock never goes stale; release stops it', async () => {
    const start = Date.UTC(2026, 5, 1);
    const clock = new FakeClock(start);
    const held = await acquireLock(lock, { command: 'mine', staleMs: 40_000, heartbeatMs: 10_000, clock });
    const owner = path.join(lock, 'owner.json');
    for (let beat = 1; beat <= 5; beat++) {
      clock.advance(10_000);
      await until(async () => (await fs.stat(owner)).mtimeMs === start + beat * 10_000, 1);
      expect(await readLock(lock, 40_000, clock)).toMatchObject({ live: true, ageMs: 0 });
    }
    await held.release();
    expect(clock.pending()).toBe(0);
  });
});
