/**
 * The tree's crash-safe primitives ("placing" a file, never "publishing"
 * it: that word is the pull request's): everything appears under its final
 * name by rename from a temp name in the same directory, after fsync, and
 * the directory is fsynced after. A kill -9 at any instant leaves the old
 * state or the new one, plus at most a temp file that verify --repair
 * removes.
 */
import { commandLine } from '../emit/bash';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RefusedError, errnoCode } from '../errors';
import { fsyncPath, renameIntoPlace, sha256File, tempNameFor } from '../util/files';

export { renameIntoPlace };

/**
 * Copies `src` to a temp name beside `target`, hashing as it goes, and
 * fsyncs it. Returns the temp name and digest; the caller renames it into place.
 */
export async function copyToTemp(
  src: string,
  target: string,
  signal?: AbortSignal,
): Promise<{ tmp: string; sha256: string; size: number }> {
  const tmp = tempNameFor(target);
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    await pipeline(
      createReadStream(src, { highWaterMark: 1 << 20 }),
      tap,
      createWriteStream(tmp, { flags: 'wx', mode: 0o644 }),
      { signal },
    );
    await fs.chmod(tmp, 0o644);
    await fsyncPath(tmp);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  return { tmp, sha256: hash.digest('hex'), size };
}

/** Why a hard link can fail where a copy still works: another file system, or links refused there. */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP']);

/**
 * `src`'s bytes at a temp name beside `target`, hashed and fsynced, for the
 * caller to rename into place. With `link` (the caller removes `src` once
 * the tree holds it) and one file system, the temp name is a hard link to
 * `src`: no byte is copied, only read to hash. Across file systems, or where
 * links are refused, it is a copy (copyToTemp). A stop at any point leaves
 * `src` whole and at most a temp name that verify --repair removes.
 */
export async function placeTemp(
  src: string,
  target: string,
  opts: { link: boolean; signal?: AbortSignal },
): Promise<{ tmp: string; sha256: string; size: number; linked: boolean }> {
  if (opts.link) {
    const tmp = tempNameFor(target);
    const linked = await fs.link(src, tmp).then(
      () => true,
      (e: unknown) => {
        if (NO_LINK.has(errnoCode(e) ?? '')) return false;
        throw e;
      },
    );
    if (linked) {
      try {
        const sha256 = await sha256File(tmp, opts.signal);
        const { size } = await fs.stat(tmp);
        await fs.chmod(tmp, 0o644);
        await fsyncPath(tmp);
        return { tmp, sha256, size, linked: true };
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    }
  }
  return { ...(await copyToTemp(src, target, opts.signal)), linked: false };
}

/**
 * Puts `src` at `target` as a hard link (O(1) on the same file system) or,
 * across file systems, as a copy; atomically either way.
 */
export async function linkOrCopy(src: string, target: string, signal?: AbortSignal): Promise<'hardlink' | 'copy'> {
  const tmp = tempNameFor(target);
  try {
    await fs.link(src, tmp);
    await renameIntoPlace(tmp, target);
    return 'hardlink';
  } catch (e) {
    await fs.rm(tmp, { force: true });
    if (errnoCode(e) !== 'EXDEV') throw e;
  }
  const copied = await copyToTemp(src, target, signal);
  await renameIntoPlace(copied.tmp, target);
  return 'copy';
}

/** Makes or switches a symlink atomically: a new link renamed over the old. */
export async function symlinkAtomic(linkTarget: string, at: string): Promise<void> {
  const tmp = tempNameFor(at);
  await fs.symlink(linkTarget, tmp);
  await renameIntoPlace(tmp, at);
}

/**
 * Refuses before the first change when `dir`'s file system lacks room for
 * `bytes` more (plus 1% for metadata): a copy that fills the disk halfway
 * would only leave a temp file behind.
 */
export async function ensureSpace(dir: string, bytes: number, treeRoot: string): Promise<void> {
  const s = await fs.statfs(dir);
  const free = s.bavail * s.bsize;
  const need = Math.ceil(bytes * 1.01);
  if (free < need)
    throw new RefusedError(
      'no-space',
      `${dir} has ${(free / 1048576).toFixed(0)} MiB free, the copy needs ${(need / 1048576).toFixed(0)} MiB; nothing was changed`,
      {
        // retire's plan (it changes nothing) shows what could go; --apply then frees it.
        hint: `free space there (${commandLine(['sifkit', 'retire', '--root', treeRoot])} shows what retiring would free), then run the command again`,
      },
    );
}

/** True when both paths are on one file system (a hard link can join them). */
export async function sameDevice(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.stat(a), fs.stat(b)]);
  return sa.dev === sb.dev;
}
