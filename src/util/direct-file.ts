/**
 * Files written past the page cache (O_DIRECT): the image archive a
 * release keeps, and the layers' blocks copied into a SIF. They are
 * written once and not read again while the page cache could help, and
 * at tens of GB, through the cache, they would push out what the build
 * host does use. Writing through the cache also costs the writer:
 * measured on the 2-core bench VM, 1 GiB into fresh page cache took 2.9
 * to 3.5 s of kernel time, against 0.25 s with O_DIRECT.
 *
 * O_DIRECT takes only buffers, offsets and lengths aligned to the
 * device's blocks. A Node Buffer's address is malloc's (16-byte aligned);
 * a WebAssembly memory's is page aligned, so the bytes are staged there
 * (one copy, which node would make anyway to hand them to a writer). A
 * file's last piece is written padded to a whole block and the file then
 * cut to its size. Where the file system refuses O_DIRECT (a probe write
 * tells), the file is written the usual way.
 */
import { constants, createWriteStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { InterruptedError, errnoCode } from '../errors';

/** What O_DIRECT offsets and lengths are kept to: a page, a multiple of any device's logical block. */
export const DIRECT_ALIGN = 4096;

/** Bytes per O_DIRECT write. */
const STAGE = 1 << 20;

export const alignUp = (n: number) => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;

/** The one part of the WebAssembly API used (the TypeScript libs here declare none of it). */
declare const WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } };

/** `bytes` (a multiple of 64 KiB) at a page-aligned address: a WebAssembly memory's. */
export function alignedBuffer(bytes: number): Buffer {
  return Buffer.from(new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) }).buffer, 0, bytes);
}

/** `file` opened with O_DIRECT and `flags`; undefined where the platform or the file system refuses the flag. */
export async function openDirect(file: string, flags: number, mode = 0o666): Promise<FileHandle | undefined> {
  const direct = (constants as Record<string, number | undefined>).O_DIRECT;
  if (direct === undefined) return undefined;
  let fh: FileHandle;
  try {
    fh = await fs.open(file, flags | direct, mode);
  } catch (e) {
    if (errnoCode(e) !== 'EINVAL') throw e;
    return undefined;
  }
  return fh;
}

/**
 * Writes `length` bytes of `buf` at `at` through `direct` (O_DIRECT),
 * or through `buffered` when there is none or it refuses them (EINVAL:
 * a file system that took the flag at open but not these writes).
 * False when `direct` refused: the caller writes the usual way from then on.
 */
export async function writeDirectOr(
  direct: Pick<FileHandle, 'write'> | undefined,
  buffered: Pick<FileHandle, 'write'>,
  buf: Buffer,
  length: number,
  at: number,
): Promise<boolean> {
  if (direct)
    try {
      await direct.write(buf, 0, length, at);
      return true;
    } catch (e) {
      if (errnoCode(e) !== 'EINVAL') throw e;
    }
  await buffered.write(buf, 0, length, at);
  return !direct;
}

export interface FileSink {
  sink: Writable;
  /** Resolves once every byte the sink was given is in the file; rejects when the sink was cut short. */
  written: Promise<void>;
  /** 'direct' when past the page cache. */
  how: 'direct' | 'buffered';
}

/** Resolves once `sink` finished and closed; rejects when it failed or was closed before its end. */
function writtenOf(sink: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    sink.on('close', () => (sink.writableFinished ? resolve() : reject(new InterruptedError())));
    sink.on('error', reject);
  });
}

/** The usual way: through the page cache. */
function buffered(file: string): FileSink {
  const sink = createWriteStream(file, { flags: 'wx' });
  return { sink, written: writtenOf(sink), how: 'buffered' };
}

/**
 * A sink writing `fh` (O_DIRECT, empty) from the start: bytes staged into
 * the two halves of `stage` (aligned), one filled while the other is written.
 */
function directSink(fh: FileHandle, stage: Buffer): Writable {
  const halves = [stage.subarray(0, STAGE), stage.subarray(STAGE, 2 * STAGE)];
  let cur = 0;
  let fill = 0;
  let at = 0;
  let inFlight: Promise<unknown> = Promise.resolve();
  const flushHalf = async (length: number) => {
    await inFlight;
    const p = fh.write(halves[cur], 0, length, at);
    p.catch(() => undefined);
    inFlight = p;
    at += length;
    cur ^= 1;
    fill = 0;
  };
  return new Writable({
    highWaterMark: STAGE,
    write(chunk: Buffer, _enc, done) {
      void (async () => {
        for (let off = 0; off < chunk.length;) {
          const n = chunk.copy(halves[cur], fill, off, off + Math.min(STAGE - fill, chunk.length - off));
          fill += n;
          off += n;
          if (fill === STAGE) await flushHalf(STAGE);
        }
      })().then(() => done(), done);
    },
    final(done) {
      void (async () => {
        const size = at + fill;
        // The last piece padded with zeros to a whole block, then the file cut to its size.
        const padded = alignUp(fill);
        halves[cur].fill(0, fill, padded);
        if (padded > 0) await flushHalf(padded);
        await inFlight;
        await fh.truncate(size);
        await fh.close();
      })().then(() => done(), done);
    },
    destroy(e, done) {
      void inFlight
        .catch(() => undefined)
        .then(() => fh.close())
        .catch(() => undefined)
        .then(() => done(e));
    },
  });
}

/**
 * Creates `file` (it must not exist) and gives a sink for its bytes,
 * written past the page cache where the file system allows it.
 */
export async function createFileSink(file: string): Promise<FileSink> {
  const fh = await openDirect(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
  const stage = alignedBuffer(2 * STAGE);
  // A block of zeros at 0 (written over by the data, or cut off) shows the flag is honoured with these buffers.
  const honoured = await fh?.write(stage.fill(0, 0, DIRECT_ALIGN), 0, DIRECT_ALIGN, 0).then(
    () => true,
    async (e: unknown) => {
      if (errnoCode(e) === 'EINVAL') return false;
      await fh.close();
      throw e;
    },
  );
  if (!fh || !honoured) {
    await fh?.close();
    // Linux creates the file before it refuses the flag.
    await fs.rm(file, { force: true });
    return buffered(file);
  }
  const sink = directSink(fh, stage);
  return { sink, written: writtenOf(sink), how: 'direct' };
}
