/**
 * The tree's crash-safe primitives: everything appears under its final
 * name by rename from a temp name in the same directory, after fsync, and
 * the directory is fsynced after. A kill -9 at any instant leaves the old
 * state or the new one, plus at most a temp file that verify --repair
 * removes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode } from '../errors';
import { fsyncPath, publishTemp, tempNameFor } from '../util/files';

export { publishTemp };

/**
 * Copies `src` to a temp name beside `target`, hashing as it goes, and
 * fsyncs it. Returns the temp name and digest; the caller publishes it.
 */
export async function copyToTemp(src: string, target: string, signal?: AbortSignal): Promise<{ tmp: string; sha256: string; size: number }> {
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
    await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), tap, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }), { signal });
    await fs.chmod(tmp, 0o644);
    await fsyncPath(tmp);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  return { tmp, sha256: hash.digest('hex'), size };
}

/**
 * Puts `src` at `target` as a hard link (O(1) on the same file system) or,
 * across file systems, as a copy; atomically either way.
 */
export async function linkOrCopy(src: string, target: string, signal?: AbortSignal): Promise<'hardlink' | 'copy'> {
  const tmp = tempNameFor(target);
  try {
    await fs.link(src, tmp);
    await publishTemp(tmp, target);
    return 'hardlink';
  } catch (e) {
    await fs.rm(tmp, { force: true });
    if (errnoCode(e) !== 'EXDEV') throw e;
  }
  const copied = await copyToTemp(src, target, signal);
  await publishTemp(copied.tmp, target);
  return 'copy';
}

/** Makes or switches a symlink atomically: a new link renamed over the old. */
export async function symlinkAtomic(linkTarget: string, at: string): Promise<void> {
  const tmp = tempNameFor(at);
  await fs.symlink(linkTarget, tmp);
  await publishTemp(tmp, at);
}
