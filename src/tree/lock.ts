/**
 * An exclusive lock for every mutating command, that works between hosts
 * on a shared file system without flock (Lustre and NFS mounts often lack
 * it): `mkdir` is atomic everywhere. The holder writes who it is and
 * touches that file as a heartbeat. A lock is stale when its holder is on
 * this host and dead, or its heartbeat stopped; a stale lock is moved
 * aside atomically, so two waiters cannot both take it.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RefusedError, errnoCode, throwIfAborted } from '../errors';
import { TEMP_MARKER } from '../util/files';
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
}

export interface HeldLock {
  owner: LockOwner;
  release(): Promise<void>;
}

const OWNER = 'owner.json';

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

async function readOwner(dir: string): Promise<{ owner?: LockOwner; ageMs: number } | undefined> {
  try {
    const file = path.join(dir, OWNER);
    const [text, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
    return { owner: JSON.parse(text) as LockOwner, ageMs: Date.now() - st.mtimeMs };
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      // Made but not yet described (or being removed): judge by the directory's age.
      try {
        const st = await fs.stat(dir);
        return { ageMs: Date.now() - st.mtimeMs };
      } catch {
        return undefined;
      }
    }
    return { ageMs: 0 };
  }
}

export function describeOwner(o?: LockOwner): string {
  return o ? `${o.user}@${o.host} pid ${o.pid} (${o.command}, since ${o.since})` : 'an unknown process';
}

export async function acquireLock(dir: string, opts: LockOptions): Promise<HeldLock> {
  const staleMs = opts.staleMs ?? Number(process.env.SIFKIT_LOCK_STALE_MS ?? 60_000);
  const heartbeatMs = opts.heartbeatMs ?? Math.max(50, Math.floor(staleMs / 4));
  const deadline = Date.now() + (opts.waitMs ?? Number(process.env.SIFKIT_LOCK_WAIT_MS ?? 120_000));
  const owner: LockOwner = { host: os.hostname(), pid: process.pid, user: userName(), command: opts.command, since: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  let delay = 20;
  for (;;) {
    throwIfAborted(opts.signal);
    try {
      await fs.mkdir(dir);
      await fs.writeFile(path.join(dir, OWNER), JSON.stringify(owner) + '\n');
      break;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    const held = await readOwner(dir);
    if (held) {
      const o = held.owner;
      const dead = o && deadOnThisHost(o.host, o.pid);
      if (dead || held.ageMs > staleMs) {
        // Move it aside under a unique name: only one breaker wins the rename.
        const aside = `${dir}${TEMP_MARKER}stale-${randomBytes(4).toString('hex')}`;
        try {
          await fs.rename(dir, aside);
          await fs.rm(aside, { recursive: true, force: true });
        } catch {
          /* someone else broke or released it first */
        }
        continue;
      }
      if (Date.now() > deadline) throw new RefusedError('locked', `the container tree is locked by ${describeOwner(o)}`, { hint: 'wait for it to finish; a lock whose holder died is broken automatically' });
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(500, delay * 2);
  }
  const beat = setInterval(() => {
    const now = new Date();
    fs.utimes(path.join(dir, OWNER), now, now).catch(() => undefined);
  }, heartbeatMs);
  beat.unref();
  return {
    owner,
    async release() {
      clearInterval(beat);
      const held = await readOwner(dir);
      if (held?.owner?.token !== owner.token) return; // broken as stale by someone else: not ours to remove
      const aside = `${dir}${TEMP_MARKER}done-${owner.token}`;
      await fs.rename(dir, aside);
      await fs.rm(aside, { recursive: true, force: true });
    },
  };
}

/** Who holds the lock now, and whether that holder is live; undefined when free. */
export async function lockHolder(dir: string, staleMs = Number(process.env.SIFKIT_LOCK_STALE_MS ?? 60_000)): Promise<{ owner?: LockOwner; live: boolean } | undefined> {
  const held = await readOwner(dir);
  if (!held) return undefined;
  const o = held.owner;
  const dead = (o && deadOnThisHost(o.host, o.pid)) || held.ageMs > staleMs;
  return { owner: o, live: !dead };
}
