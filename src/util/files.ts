import { createHash, randomBytes } from 'node:crypto';
import {
  constants,
  createReadStream,
  fstatSync,
  openSync,
  closeSync,
  promises as fs,
  statSync,
  type Stats,
} from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { hostTag, pidAlive } from './process';

/** sha256 of a stream's bytes, without holding them. */
export async function sha256Stream(stream: NodeJS.ReadableStream, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  await pipeline(
    stream,
    new Writable({
      write(chunk, _enc, cb) {
        h.update(chunk);
        cb();
      },
    }),
    { signal },
  );
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
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}${TEMP_MARKER}${hostTag()}-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

/** Marker that every temp file of ours carries, for verify --repair. */
export const TEMP_MARKER = '.sifkit-tmp-';

/** Removes the names of `dir` whose temp part (`PID-RAND`, what `rest` finds in a name) names a dead process of this host. */
async function removeDead(dir: string, rest: (name: string) => string | undefined): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const r = rest(name);
    const m = r === undefined ? null : /^(\d+)-[0-9a-f]{8}$/.exec(r);
    if (!m || pidAlive(Number(m[1]))) continue;
    await fs.rm(path.join(dir, name), { force: true, recursive: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Removes the temp files for `target` that runs on this host left when
 * killed (their process is gone); returns their names. Other hosts' are
 * left alone: their processes cannot be seen from here.
 */
export function removeDeadTemps(target: string): Promise<string[]> {
  const prefix = `.${path.basename(target)}${TEMP_MARKER}${hostTag()}-`;
  return removeDead(path.dirname(target), (n) => (n.startsWith(prefix) ? n.slice(prefix.length) : undefined));
}

/** The same for every target in `dir`: the temp files any write there left when killed. */
export function removeDeadTempsIn(dir: string): Promise<string[]> {
  const marker = `${TEMP_MARKER}${hostTag()}-`;
  return removeDead(dir, (n) => {
    const i = n.lastIndexOf(marker);
    return n.startsWith('.') && i > 1 ? n.slice(i + marker.length) : undefined;
  });
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
  await renameIntoPlace(tmp, target);
}

/**
 * `mkdir -p` for a directory everyone must read (the tree's, which users'
 * modules point into): mkdir's mode passes through the umask, so under
 * `umask 077` it would make 0700 and lock users out. Each directory made
 * here gets r-x for all added to the mode it was made with (a setgid bit
 * or group write it inherited stays); directories that existed are left
 * as their owner set them.
 */
export async function mkdirShared(dir: string): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  const made: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    made.push(d);
    if (d === path.resolve(first) || d === path.dirname(d)) break;
  }
  for (const d of made.reverse()) await fs.chmod(d, ((await fs.stat(d)).mode & 0o7777) | 0o755);
}

/** Whether `p` exists: as a name (`follow` false: a dangling link counts) or as what it leads to. */
export async function pathExists(p: string, follow = true): Promise<boolean> {
  return (follow ? fs.stat(p) : fs.lstat(p)).then(
    () => true,
    () => false,
  );
}

/** Renames a finished temp file into place and makes that durable (the temp goes on failure). */
export async function renameIntoPlace(tmp: string, target: string): Promise<void> {
  try {
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncPath(path.dirname(target));
}

/** What a stat says a path is, in words a user knows. */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO (named pipe)';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSymbolicLink()) return 'symbolic link';
  return 'special file';
}

function notRegular(file: string, what: string, st: Stats): InputError {
  return new InputError(
    'not-a-file',
    `${what} ${escapeForMessage(file, 200)} is a ${fileKind(st)}, not a regular file`,
  );
}

/*
 * Opening a FIFO for reading blocks until a writer comes, and a device may
 * act on being opened (a tape rewinds), so a user-given path is looked at
 * before it is opened. O_NONBLOCK makes the open itself return at once
 * even when the path was swapped for a FIFO in between, and the fstat of
 * the opened descriptor is what finally counts. On a regular file
 * O_NONBLOCK changes nothing. O_NOCTTY: a terminal given by mistake never
 * becomes ours.
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * Opens a user-given file for reading, refusing anything but a regular
 * file (FIFO, socket, device, directory) with a one-line InputError naming
 * the path and what it is. `what` names the role: 'SIF', 'recipe'...
 * Errors of the open itself (ENOENT, EACCES) are passed on unchanged.
 */
export async function openRegular(file: string, what: string): Promise<fs.FileHandle> {
  const st = await fs.stat(file);
  if (!st.isFile()) throw notRegular(file, what, st);
  const fh = await fs.open(file, READ_FLAGS);
  try {
    const now = await fh.stat();
    if (!now.isFile()) throw notRegular(file, what, now);
  } catch (e) {
    await fh.close();
    throw e;
  }
  return fh;
}

/** openRegular for synchronous readers: a descriptor. */
export function openRegularSync(file: string, what: string): number {
  const st = statSync(file);
  if (!st.isFile()) throw notRegular(file, what, st);
  const fd = openSync(file, READ_FLAGS);
  try {
    const now = fstatSync(fd);
    if (!now.isFile()) throw notRegular(file, what, now);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/** A whole user-given text file (recipe, policy, results), read only when it is a regular file. */
export async function readRegularFile(file: string, what: string): Promise<string> {
  const fh = await openRegular(file, what);
  try {
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Refuses a path that is there but is not a regular file, for paths handed
 * on to something else that opens them (a child process, a stream).
 * A missing path passes: whoever opens it reports that.
 */
export async function refuseNonRegular(file: string, what: string): Promise<void> {
  const st = await fs.stat(file).catch(() => undefined);
  if (st && !st.isFile()) throw notRegular(file, what, st);
}
