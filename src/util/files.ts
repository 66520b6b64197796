import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';

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

/** A temp name in the same directory as `target`, so a rename is atomic. */
export function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.sifkit-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Marker that every temp file of ours carries, for verify --repair. */
export const TEMP_MARKER = '.sifkit-tmp-';

async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
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
  await fsyncDir(path.dirname(target));
}

export { fsyncDir };
