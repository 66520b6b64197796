/**
 * One read of an image: a single `docker save` stream out of the engine,
 * teed to three readers at once: the archive file the tree keeps, the
 * leak scan, and the converter's first pass (the layers flattened on
 * their headers as they stream past). The slowest reader sets the pace
 * (the tee pauses the engine's stream until every reader drained), so
 * memory stays flat whatever the image's size.
 *
 * Nothing is published until the whole stream was read and the scan's
 * verdict was given: a refused image leaves neither archive nor SIF. The
 * converter's second pass then streams the surviving files out of the
 * archive just written (still under its temporary name), into mksquashfs;
 * no other copy of the image goes to disk. The SIF is published first and
 * the archive last, so an archive under its name always has its SIF
 * beside it; an interruption leaves only temporary names, which the next
 * run removes (removeDeadTemps) and does again.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { InterruptedError, throwIfAborted } from '../errors';
import type { ImageEngine } from '../engine/engine';
import { scanImageArchive, type LeakScanResult, type ScanNeedles } from '../fileserver/leakscan';
import { fsyncPath, renameIntoPlace, removeDeadTemps, tempNameFor } from '../util/files';
import { openDockerArchive } from './archive';
import { FlatTree, type TarHeader } from './flatten';
import { convertFlattened, type NativeOptions } from './native';
import type { ConvertResult } from './squash';

export interface OneReadOptions extends Omit<NativeOptions, 'signal'> {
  signal: AbortSignal;
  /** Where the archive goes. */
  archive: string;
  /** Where the SIF goes; none: the read gives the archive (and the scan) only. */
  sif?: string;
  /** What the leak scan looks for; none: no scan (the image was judged before). */
  needles?: ScanNeedles;
  /**
   * Judges the scan once the whole image was read, before anything is
   * published; throws to refuse (the temporary archive is removed).
   */
  judge?: (scan: LeakScanResult) => Promise<void>;
  /** Where each phase is, for a progress line. */
  onProgress?: (line: string) => void;
}

export interface OneReadResult {
  archiveSize: number;
  scan?: LeakScanResult;
  convert?: ConvertResult;
}

/**
 * Copies `source` to every sink, pausing it while any sink is full: the
 * slowest sink sets the pace. Settles when every sink was ended; the first
 * error on the source or any sink destroys them all.
 */
export function tee(source: Readable, sinks: Writable[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let full = 0;
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      source.destroy(e);
      for (const s of sinks) s.destroy(e);
      reject(e);
    };
    const drained = () => {
      if (--full === 0 && !failed) source.resume();
    };
    source.on('data', (chunk: Buffer) => {
      for (const s of sinks)
        if (!s.write(chunk)) {
          full++;
          s.once('drain', drained);
        }
      if (full > 0) source.pause();
    });
    source.on('end', () => {
      for (const s of sinks) s.end();
      resolve();
    });
    source.on('error', fail);
    // A sink closed before the end (its reader gave up) stops the read too.
    source.on('close', () => {
      if (!source.readableEnded) fail(new InterruptedError('the image stream closed before its end'));
    });
    for (const s of sinks) {
      s.on('error', fail);
      s.on('close', () => {
        if (!s.writableFinished && !failed) fail(new Error('a reader of the image stream stopped early'));
      });
    }
  });
}

/**
 * The converter's first pass over the stream: every layer member's tar
 * headers, by member name, in the order tar-stream gives them (the same
 * order, so the same sequence numbers, as the second pass reads them).
 * Members that are not tars (configs, manifests) are passed over.
 */
async function layerHeaders(stream: Readable, signal: AbortSignal): Promise<Map<string, TarHeader[]>> {
  const out = new Map<string, TarHeader[]>();
  const outer = tar.extract();
  outer.on('entry', (h, entry, next) => {
    const body = entry as unknown as Readable;
    // Torn down with the stream (another reader failed, Ctrl-C), a member errs late: never a crash.
    body.on('error', () => undefined);
    if (h.type !== 'file' || h.name.endsWith('.json') || h.name === 'oci-layout' || h.name.endsWith('/json')) {
      body.resume();
      body.on('end', () => next());
      return;
    }
    headersOf(body).then(
      (list) => {
        if (list) out.set(h.name.replace(/^\.\//, ''), list);
        next();
      },
      (e: Error) => next(e),
    );
  });
  await pipeline(stream, outer, { signal });
  return out;
}

/** The headers of one member read as a (maybe gzip'd) tar; undefined when it is neither. */
async function headersOf(member: Readable): Promise<TarHeader[] | undefined> {
  const { head, body } = await sniff(member, 512);
  const gz = head[0] === 0x1f && head[1] === 0x8b;
  if (!gz && !(head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar')) {
    body.resume();
    await new Promise<void>((resolve, reject) => {
      body.on('end', resolve);
      body.on('error', reject);
    });
    return undefined;
  }
  const list: TarHeader[] = [];
  const extract = tar.extract();
  extract.on('entry', (h, entry, next) => {
    list.push(h as TarHeader);
    const m = entry as unknown as Readable;
    m.on('error', () => undefined);
    m.on('end', () => next());
    m.resume();
  });
  await (gz ? pipeline(body, createGunzip(), extract) : pipeline(body, extract));
  return list;
}

/** The first `n` bytes (fewer when the member is shorter), and a stream that still starts at the beginning. */
function sniff(member: Readable, n: number): Promise<{ head: Buffer; body: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const done = () => {
      member.off('data', onData);
      member.off('end', onEnd);
      member.off('error', reject);
      member.off('close', onClose);
      member.pause();
      const head = Buffer.concat(chunks);
      const body = new PassThrough();
      body.write(head);
      if (ended) body.end();
      else member.pipe(body);
      member.on('error', (e) => body.destroy(e));
      resolve({ head, body });
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (size >= n) done();
    };
    const onEnd = () => {
      ended = true;
      done();
    };
    const onClose = () => {
      if (!ended && size < n) reject(new InterruptedError('the image stream closed before its end'));
    };
    member.on('data', onData);
    member.on('end', onEnd);
    member.on('error', reject);
    member.once('close', onClose);
  });
}

/**
 * Reads image `imageId` out of `engine` once: archive, scan (with
 * `needles`) and, with `sif`, the SIF. See the module comment for the
 * order in which things are judged and published.
 */
export async function saveScanConvert(
  engine: ImageEngine,
  imageId: string,
  opts: OneReadOptions,
): Promise<OneReadResult> {
  const { signal } = opts;
  await removeDeadTemps(opts.archive);
  const tmp = tempNameFor(opts.archive);
  try {
    opts.onProgress?.(
      `docker save -> ${[opts.needles && 'leak scan', 'archive', opts.sif && 'converter'].filter(Boolean).join(' + ')}`,
    );
    throwIfAborted(signal);
    const source = await engine.saveImage(imageId);
    const onAbort = () => source.destroy(new InterruptedError());
    signal.addEventListener('abort', onAbort, { once: true });
    let scanned: Promise<LeakScanResult> | undefined;
    let headers: Promise<Map<string, TarHeader[]>> | undefined;
    try {
      if (signal.aborted) onAbort();
      const file = createWriteStream(tmp, { flags: 'wx' });
      const written = new Promise<void>((resolve, reject) => {
        file.on('close', () => (file.writableFinished ? resolve() : reject(new InterruptedError())));
        file.on('error', reject);
      });
      const sinks: Writable[] = [file];
      const readers: Array<Promise<unknown>> = [tee(source, sinks), written];
      if (opts.needles) {
        const p = new PassThrough({ highWaterMark: 1 << 20 });
        sinks.push(p);
        readers.push((scanned = scanImageArchive(p, opts.needles, signal)));
      }
      if (opts.sif) {
        const p = new PassThrough({ highWaterMark: 1 << 20 });
        sinks.push(p);
        readers.push((headers = layerHeaders(p, signal)));
      }
      // Every reader's end is waited for; the first failure of any stops the others (tee destroys them all).
      const settled = await Promise.allSettled(readers);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) {
        for (const s of sinks) s.destroy();
        source.destroy();
        throw signal.aborted ? new InterruptedError('interrupted while reading the image') : failed.reason;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    await fsyncPath(tmp);
    const scan = scanned ? await scanned : undefined;
    if (scan && opts.judge) await opts.judge(scan);
    throwIfAborted(signal);
    let convert: ConvertResult | undefined;
    if (opts.sif && headers) {
      opts.onProgress?.(`mksquashfs -> ${opts.sif}`);
      const archive = await openDockerArchive(tmp);
      const byMember = await headers;
      const tree = new FlatTree();
      archive.layerNames.forEach((name, layer) => {
        (byMember.get(name) ?? []).forEach((h, seq) => tree.apply(layer, seq, h));
      });
      convert = await convertFlattened(archive, tree, opts.sif, { ...opts, signal });
    }
    const archiveSize = (await fs.stat(tmp)).size;
    await renameIntoPlace(tmp, opts.archive);
    return { archiveSize, scan, convert };
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
