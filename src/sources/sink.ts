/**
 * Where a download's bytes go: into the digest as they arrive and into the
 * partial file in large batches (one `writev` per batch, not one write per
 * socket chunk), with the kernel's writeback started in the background
 * every `flushEvery` bytes. The final fsync then finds little left to
 * write, so durability costs almost nothing on top of the transfer
 * (measured with `SIFKIT_BENCH_ONLY=fetch npm run bench`).
 */
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/** Bytes buffered before the stream pushes back on the socket: enough for a large writev. */
const BATCH = 4 << 20;
/** Background flush interval: bounds what the final fsync must still write per file. */
const FLUSH_EVERY = 8 << 20;

export class DigestingFileSink extends Writable {
  private sinceFlush = 0;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly file: FileHandle,
    private readonly hash: Hash,
    private readonly onBytes: (n: number) => void,
    private readonly flushEvery = FLUSH_EVERY,
  ) {
    super({ highWaterMark: BATCH });
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (e?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    let n = 0;
    for (const b of bufs) {
      this.hash.update(b);
      n += b.length;
    }
    this.writeAll(bufs, n).then(() => {
      this.onBytes(n);
      this.sinceFlush += n;
      if (this.sinceFlush >= this.flushEvery && this.flushing === undefined) {
        this.sinceFlush = 0;
        // Not awaited: the writeback runs while the next bytes arrive. A failure shows in the final fsync.
        const over = () => {
          this.flushing = undefined;
        };
        this.flushing = this.file.datasync().then(over, over);
      }
      done();
    }, done);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this._writev([{ chunk }], done);
  }

  /** Waits for a background flush still running, so the file is not closed under it. */
  override _final(done: (e?: Error | null) => void): void {
    (this.flushing ?? Promise.resolve()).then(() => done(), done);
  }

  /** writev may write less than asked (a full disk, a signal): the rest follows, or the error. */
  private async writeAll(bufs: Buffer[], n: number): Promise<void> {
    const { bytesWritten } = await this.file.writev(bufs);
    if (bytesWritten === n) return;
    const rest = Buffer.concat(bufs).subarray(bytesWritten);
    for (let off = 0; off < rest.length;) {
      const wrote = (await this.file.write(rest, off, rest.length - off)).bytesWritten;
      if (wrote === 0) throw new Error('the file took no more bytes');
      off += wrote;
    }
  }
}
