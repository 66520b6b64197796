/**
 * Gathers a stream's small chunks into big ones. The engine's socket gives
 * an image in pieces of about 20 KiB; every piece costs each reader of the
 * one-read tee (archive, scan, converter, and their tar parsers) a round of
 * stream calls and a write, which together cost more CPU than the bytes
 * themselves. One copy into chunks of `size` bytes makes that per-chunk
 * work 50 times rarer.
 */
import { Transform } from 'node:stream';

export function coalesce(size = 1 << 20): Transform {
  let parts: Buffer[] = [];
  let held = 0;
  const take = (): Buffer => {
    const b = parts.length === 1 ? parts[0] : Buffer.concat(parts, held);
    parts = [];
    held = 0;
    return b;
  };
  return new Transform({
    readableHighWaterMark: size,
    writableHighWaterMark: size,
    transform(chunk: Buffer, _enc, done) {
      parts.push(chunk);
      held += chunk.length;
      done(null, held >= size ? take() : undefined);
    },
    flush(done) {
      done(null, held > 0 ? take() : undefined);
    },
  });
}
