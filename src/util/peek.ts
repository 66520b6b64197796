/**
 * The first bytes of a stream, looked at without losing them: what a layer
 * member is (a tar, gzip'd or not) is known only from its head, and the
 * reader that decides still needs the whole stream after.
 */
import { PassThrough, type Readable } from 'node:stream';
import { InterruptedError } from '../errors';

/** What a head of 512 bytes says a member is. */
export type HeadKind = 'gzip' | 'zstd' | 'tar' | 'empty-tar' | 'other';

export function kindOfHead(head: Buffer): HeadKind {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  // A layer that changed nothing is a tar of its end marker alone: zeros.
  if (head.length === 512 && head.every((b) => b === 0)) return 'empty-tar';
  return 'other';
}

/**
 * The first `n` bytes of `stream` (fewer when it is shorter), and a stream
 * that still starts at the beginning; an error of `stream` after the head
 * reaches it too, once the caller's continuation has run (it must listen
 * for errors there, synchronously).
 */
export function peek(stream: Readable, n: number): Promise<{ head: Buffer; body: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const done = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', reject);
      stream.off('close', onClose);
      stream.pause();
      const head = Buffer.concat(chunks);
      const body = new PassThrough();
      body.write(head);
      if (ended) body.end();
      else stream.pipe(body);
      // After the caller's continuation, never before: an error may come in the same tick as the
      // head (a short member whose check fails at its end), and on a body nobody listens to yet it
      // would crash the process. Microtasks (the awaiting caller) run before setImmediate.
      stream.on('error', (e) => setImmediate(() => body.destroy(e)));
      resolve({ head: head.subarray(0, n), body });
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
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', reject);
    stream.once('close', onClose);
  });
}
