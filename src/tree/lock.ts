/**
 * An exclusive lock for every mutating command, that works between hosts
 * on a shared file system without flock (Lustre and NFS mounts often lack
 * it). The lock is a directory holding `owner.json`, prepared under a temp
 * name and renamed into place: a rename onto an existing non-empty
 * directory fails, so taking it is atomic, and its owner is known from the
 * instant it exists (no window where a crash leaves an ownerless lock).
 * The holder touches owner.json as a heartbeat. A lock is stale when its
 * holder is on this host and dead (seen at once), or when its heartbeat
 * is older than the stale timeout (another host's holder).
 *
 * Removing the lock (breaking a stale one, or releasing one's own) is done
 * only under a short second lock, `lock.break`, and only after reading,
 * under it, the token of the lock about to go: nothing else removes the
 * lock, so what was read is what is removed. Two breakers never both win,
 * and a holder broken as stale never removes its successor's lock.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RefusedError, errnoCode, throwIfAborted } from '../errors';
import { z } from 'zod';
import { commandLine } from '../emit/bash';
import { realClock, type Clock } from '../util/clock';
import { msFromEnv } from '../util/env';
import { TEMP_MARKER, fsyncPath, tempNameFor } from '../util/files';
import { deadOnThisHost } from '../util/process';

export interface LockOwner {
  host: string;
  pid: number;
  user: string;
  command: string;
  since: string;
  token: string;
}

export interface LockOptions {
  command: string;
  /** How long to wait for a held lock before failing (ms). */
  waitMs?: number;
  /** A heartbeat older than this marks the lock stale (ms). */
  staleMs?: number;
  heartbeatMs?: number;
  signal?: AbortSignal;
  /** What times the wait, the heartbeat and a heartbeat's age (default: the host's clock). */
  clock?: Clock;
  /** Told once, when the lock is found held by a live holder and the wait begins (up to `waitMs`). */
  onWait?: (held: LockState, waitMs: number) => void;
}

export interface HeldLock {
  owner: LockOwner;
  release(): Promise<void>;
}

/** What `status` and `verify` show about the lock. */
export interface LockState {
  owner?: LockOwner;
  /** Since the holder's last heartbeat (ms). */
  ageMs: number;
  live: boolean;
  /** Why it is not live, when it is not. */
  why?: string;
}

const OWNER = 'owner.json';

export function staleMsFromEnv(): number {
  return msFromEnv('SIFKIT_LOCK_STALE_MS', 60_000);
}

/**
 * owner.json as the lock's holder wrote it. Read by others (a hand edit, a
 * newer or broken sifkit), so checked: an owner that fails is "an unknown
 * process", judged by its file's age, never shown as `[object Object]`.
 */
const lockOwnerSchema = z.object({
  host: z.string(),
  pid: z.number().int().positive(),
  user: z.string(),
  command: z.string(),
  since: z.string(),
  token: z.string(),
});

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

/**
 * The lock at `dir` as it is now; undefined when there is none. An
 * unreadable owner (which a lock made by rename cannot have, but a hand
 * edit can) is judged by its file's age, never taken as fresh forever.
 */
export async function readLock(
  dir: string,
  staleMs = staleMsFromEnv(),
  clock: Clock = realClock,
): Promise<LockState | undefined> {
  const file = path.join(dir, OWNER);
  let st;
  try {
    st = await fs.stat(file);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    // No owner file: an old-style lock, or one being removed right now.
    try {
      st = await fs.stat(dir);
    } catch {
      return undefined;
    }
  }
  const ageMs = Math.max(0, clock.now() - st.mtimeMs);
  let owner: LockOwner | undefined;
  try {
    const parsed = lockOwnerSchema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
    owner = parsed.success ? parsed.data : undefined;
  } catch {
    owner = undefined;
  }
  if (owner && deadOnThisHost(owner.host, owner.pid))
    return { owner, ageMs, live: false, why: `process ${owner.pid} on this host is gone` };
  if (ageMs > staleMs) return { owner, ageMs, live: false, why: `no heartbeat for ${Math.round(ageMs / 1000)} s` };
  return { owner, ageMs, live: true };
}

export function describeOwner(o?: LockOwner): string {
  return o ? `${o.user}@${o.host} pid ${o.pid} (${o.command}, since ${o.since})` : 'an unknown process';
}

/** One line about a lock for people: who, how old its heartbeat, live or not. */
export function describeLock(s: LockState): string {
  return `${describeOwner(s.owner)}, heartbeat ${(s.ageMs / 1000).toFixed(1)} s ago, ${s.live ? 'live' : `stale: ${s.why}`}`;
}

/**
 * Puts a directory holding owner.json at `dir` by rename, or returns false
 * when one is there. The candidate is fsynced first, so the owner survives
 * a crash together with the lock.
 */
async function placeLock(dir: string, owner: LockOwner): Promise<boolean> {
  const tmp = tempNameFor(dir);
  await fs.mkdir(tmp, { mode: 0o755 });
  try {
    const file = path.join(tmp, OWNER);
    const fh = await fs.open(file, 'wx', 0o644);
    try {
      await fh.writeFile(JSON.stringify(owner) + '\n');
      await fh.sync();
    } catch (e) {
      // A write through a handle names no file; a full disk is then told without where.
      if (errnoCode(e) && !(e as { path?: string }).path) Object.assign(e as object, { path: file });
      throw e;
    } finally {
      await fh.close();
    }
    try {
      await fs.rename(tmp, dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOTEMPTY' || errnoCode(e) === 'EEXIST') return false;
      throw e;
    }
    await fsyncPath(path.dirname(dir));
    return true;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Moves the lock directory aside under a unique name and deletes it. */
async function removeLockDir(dir: string, why: string): Promise<void> {
  const aside = `${dir}${TEMP_MARKER}${why}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.rename(dir, aside);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  await fs.rm(aside, { recursive: true, force: true });
}

/**
 * Runs `fn` under `lock.break`, the short lock every removal of the main
 * lock takes. It is held for a few system calls, so one whose holder died
 * (or that is older than the stale timeout) is removed on sight; false
 * when another process holds it now (the caller retries).
 */
async function underBreakLock(dir: string, staleMs: number, clock: Clock, fn: () => Promise<void>): Promise<boolean> {
  const brk = `${dir}.break`;
  const me: LockOwner = {
    host: os.hostname(),
    pid: process.pid,
    user: userName(),
    command: 'lock removal',
    since: new Date(clock.now()).toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  if (!(await placeLock(brk, me))) {
    const held = await readLock(brk, staleMs, clock);
    // A dead break lock is moved aside, then what was moved is checked: a
    // live one (the dead one removed and the name taken again between our
    // read and our rename, all within two system calls) is put back.
    if (held && !held.live) {
      const aside = `${brk}${TEMP_MARKER}stale-${randomBytes(4).toString('hex')}`;
      try {
        await fs.rename(brk, aside);
        const moved = await readLock(aside, staleMs, clock);
        if (moved?.live && moved.owner?.token !== held.owner?.token) await fs.rename(aside, brk).catch(() => undefined);
        await fs.rm(aside, { recursive: true, force: true });
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
      }
    }
    return false;
  }
  try {
    await fn();
  } finally {
    await removeLockDir(brk, 'break-done');
  }
  return true;
}

/** Under the break lock: removes the lock when it still is the one with `token` (or one that is stale). */
async function removeIf(
  dir: string,
  staleMs: number,
  clock: Clock,
  want: (s: LockState) => boolean,
  why: string,
): Promise<boolean> {
  let removed = false;
  const ran = await underBreakLock(dir, staleMs, clock, async () => {
    const now = await readLock(dir, staleMs, clock);
    if (now && want(now)) {
      await removeLockDir(dir, why);
      removed = true;
    }
  });
  return ran && removed;
}

export async function acquireLock(dir: string, opts: LockOptions): Promise<HeldLock> {
  const staleMs = opts.staleMs ?? staleMsFromEnv();
  const heartbeatMs = opts.heartbeatMs ?? Math.max(50, Math.floor(staleMs / 4));
  const clock = opts.clock ?? realClock;
  const waitMs = opts.waitMs ?? msFromEnv('SIFKIT_LOCK_WAIT_MS', 120_000);
  const deadline = clock.now() + waitMs;
  let told = false;
  const owner: LockOwner = {
    host: os.hostname(),
    pid: process.pid,
    user: userName(),
    command: opts.command,
    since: new Date(clock.now()).toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  let delay = 20;
  for (;;) {
    throwIfAborted(opts.signal);
    if (await placeLock(dir, owner)) break;
    const held = await readLock(dir, staleMs, clock);
    if (held && !held.live) {
      // Broken only if it still is the very lock judged stale.
      await removeIf(dir, staleMs, clock, (s) => !s.live && s.owner?.token === held.owner?.token, 'stale');
      continue;
    }
    if (held && !told && clock.now() <= deadline) {
      told = true;
      opts.onWait?.(held, waitMs);
    }
    if (held && clock.now() > deadline) {
      // The lock lives at ROOT/.sifkit/lock: the message names the tree, the hint a command that shows its holder.
      const root = path.dirname(path.dirname(dir));
      throw new RefusedError('locked', `the container tree ${root} is locked by ${describeLock(held)}`, {
        hint: `wait for it to finish (${commandLine(['sifkit', 'status', '--root', root])} shows the holder); a lock whose holder died is broken automatically (at once on this host, after SIFKIT_LOCK_STALE_MS from another)`,
      });
    }
    await clock.sleep(delay);
    delay = Math.min(500, delay * 2);
  }
  const ownerFile = path.join(dir, OWNER);
  let stopBeat: () => void = () => undefined;
  const beat = () => {
    stopBeat = clock.setTimer(heartbeatMs, () => {
      const now = new Date(clock.now());
      fs.utimes(ownerFile, now, now).catch(() => undefined);
      beat();
    });
  };
  beat();
  return {
    owner,
    async release() {
      stopBeat();
      for (;;) {
        const held = await readLock(dir, staleMs, clock);
        // Broken as stale by someone else: what is there now is not ours to remove.
        if (held?.owner?.token !== owner.token) return;
        if (
          await underBreakLock(dir, staleMs, clock, async () => {
            if ((await readLock(dir, staleMs, clock))?.owner?.token === owner.token) await removeLockDir(dir, 'done');
          })
        )
          return;
        await clock.sleep(10);
      }
    },
  };
}

/**
 * Clears the break lock of `dir` when its holder died (a process killed
 * while it removed the main lock), for verify --repair, which holds the
 * main lock. underBreakLock removes a dead break lock on sight; taking and
 * releasing it once more leaves none.
 */
export async function clearDeadBreakLock(
  dir: string,
  staleMs = staleMsFromEnv(),
  clock: Clock = realClock,
): Promise<void> {
  for (let i = 0; i < 3; i++) if (await underBreakLock(dir, staleMs, clock, async () => undefined)) return;
}

/** Who holds the lock now, how old its heartbeat is, and whether it is live; undefined when free. */
export async function lockHolder(dir: string, staleMs = staleMsFromEnv()): Promise<LockState | undefined> {
  return readLock(dir, staleMs);
}
