/**
 * The converter's first pass over an image's `docker save` stream, as it
 * streams: every layer's tar headers (the flattener's input), and, when a
 * squasher is given, each layer's tar to it as well (layer-squash.ts), so
 * the layers are compressed while the image is still being read.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { InterruptedError } from '../errors';
import { kindOfHead, peek } from '../util/peek';
import type { TarHeader } from './flatten';

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
export async function layerHeaders(
  stream: Readable,
  signal: AbortSignal,
  squash?: (member: string, tarStream: Readable) => Promise<void>,
): Promise<Map<string, TarHeader[]>> {
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
    const name = h.name.replace(/^\.\//, '');
    headersOf(body, squash && ((t) => squash(name, t))).then(
      (list) => {
        if (list) out.set(name, list);
        next();
      },
      (e: Error) => next(e),
    );
  });
  await pipeline(stream, outer, { signal });
  return out;
}

/**
 * The headers of one member read as a (maybe gzip'd) tar; undefined when
 * it is neither. With `squash`, the tar goes to it as well, at the pace of
 * the slower of the two.
 */
export async function headersOf(
  member: Readable,
  squash?: (tarStream: Readable) => Promise<void>,
): Promise<TarHeader[] | undefined> {
  const { head, body } = await peek(member, 512);
  const kind = kindOfHead(head);
  const gz = kind === 'gzip';
  if (kind !== 'gzip' && kind !== 'tar' && kind !== 'empty-tar') {
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
  const plain: Readable = gz ? body.pipe(createGunzip()) : body;
  if (gz) body.on('error', (e) => plain.destroy(e));
  if (!squash) {
    await pipeline(plain, extract);
    return list;
  }
  const toExtract = new PassThrough({ highWaterMark: 1 << 20 });
  const toSquash = new PassThrough({ highWaterMark: 1 << 20 });
  // The extractor stops at the tar's end marker; what follows (padding) is drained, not refused, so
  // the layer is read to its end and its own check (a diff ID) is the error that tells, never a
  // reader that seemed to stop early.
  const extracted = new Promise<void>((resolve, reject) => {
    extract.on('finish', () => {
      toExtract.unpipe(extract);
      toExtract.resume();
      resolve();
    });
    extract.on('error', reject);
    toExtract.on('error', reject);
    toExtract.pipe(extract);
  });
  const all = [tee(plain, [toExtract, toSquash]), extracted, squash(toSquash)];
  const settled = await Promise.allSettled(all);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    for (const s of [plain, toExtract, toSquash]) s.destroy();
    throw failed.reason;
  }
  return list;
}
