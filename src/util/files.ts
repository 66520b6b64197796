import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { hostTag, pidAlive } from './process';

/** sha256 of a stream's bytes, without holding them. */
export async function sha256Stream(stream: NodeJS.ReadableStream, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  await pipeline(stream, new Writable({
    write(chunk, _enc, cb) {
      h.update(chunk);
      cb();
    },
  }), { signal });
  return h.digest('hex');
}

/** sha256 of a file, streamed. */
export function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  return sha256Stream(createReadStream(file, { highWaterMark: 1 << 20 }), signal);
}

/**
 * A temp name in the same directory as `target`, so a rename is atomic.
 * It names the host and process that write it, so a later run can tell a
 * leftover of a killed run from a file another run is still writing.
 */
export function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARKER}${hostTag()}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Marker that every temp file of ours carries, for verify --repair. */
export const TEMP_MARKER = '.sifkit-tmp-';

/**
 * Removes the temp files for `target` that runs on this host left when
 * killed (their process is gone); returns their names. Other hosts' are
 * left alone: their processes cannot be seen from here.
 */
export async function removeDeadTemps(target: string): Promise<string[]> {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}${TEMP_MARKER}${hostTag()}-`;
  const removed: string[] = [];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length));
    if (!m || pidAlive(Number(m[1]))) continue;
    await fs.rm(path.join(dir, name), { force: true, recursive: true });
    removed.push(name);
  }
  return removed;
}

/** fsync of a file or a directory (a directory opened read-only, as POSIX allows). */
export async function fsyncPath(file: string): Promise<void> {
  const h = await fs.open(file, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Writes a file atomically: temp name in the target directory, fsync,
 * rename, directory fsync. A crash leaves the old file or the new one.
 */
export async function writeFileAtomic(target: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = tempNameFor(target);
  const h = await fs.open(tmp, 'wx', mode);
  try {
    await h.writeFile(data);
    await h.chmod(mode);
    await h.sync();
  } catch (e) {
    await h.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await h.close();
  await publishTemp(tmp, target);
}

/** Renames a finished temp file into place and makes that durable (the temp goes on failure). */
export async function publishTemp(tmp: string, target: string): Promise<void> {
  try {
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncPath(path.dirname(target));
}

