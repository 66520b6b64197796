/**
 * Metadata blocks as the squashfs writer makes them: a stream of bytes cut
 * into blocks of 8 KiB, each deflated when that is smaller (else stored
 * with the uncompressed bit), compressed as soon as it is full so that a
 * reference to any byte written so far is known at once: the block it lies
 * in starts where the compressed blocks before it end. That is how
 * mksquashfs can write a directory's listing, whose headers name its
 * children's inode blocks, and then the directory's inode, which names
 * the listing's block. Pure.
 */
import { deflateSync } from 'node:zlib';
import { META_SIZE } from './layout';

const META_UNCOMPRESSED = 0x8000;
/** mksquashfs's gzip compressor: level 9, window 15. */
const DEFLATE = { level: 9, windowBits: 15 } as const;

/** One metadata block on disk: its 2-byte header, then the bytes deflated (unless `stored`, or no smaller). */
export function metaBlock(raw: Buffer, stored = false): Buffer {
  const z = stored ? raw : deflateSync(raw, DEFLATE);
  const head = Buffer.alloc(2);
  if (z.length < raw.length) {
    head.writeUInt16LE(z.length, 0);
    return Buffer.concat([head, z]);
  }
  head.writeUInt16LE(raw.length | META_UNCOMPRESSED, 0);
  return Buffer.concat([head, raw]);
}

/** A data block's bytes on disk and its size word (bit 24: stored uncompressed; 0: sparse). */
export function dataBlock(raw: Buffer): { bytes: Buffer; word: number } {
  if (isZero(raw)) return { bytes: Buffer.alloc(0), word: 0 };
  const z = deflateSync(raw, DEFLATE);
  return z.length < raw.length ? { bytes: z, word: z.length } : { bytes: raw, word: raw.length | (1 << 24) };
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Where a byte of a metadata stream lies: its block's start (relative to the table) and the offset in it. */
export interface MetaRef {
  block: number;
  offset: number;
}

export class MetaStream {
  private readonly done: Buffer[] = [];
  private cur = Buffer.alloc(META_SIZE);
  private used = 0;
  /** Bytes of the blocks compressed so far: where the current block starts. */
  private compressed = 0;
  /** The start of every block so far, by block number (uncompressed position / 8 KiB). */
  private readonly starts: number[] = [0];

  /** `stored`: every block stored uncompressed (as mksquashfs -noI stores them). */
  constructor(private readonly stored = false) {}

  /** Where the next byte appended goes. */
  get here(): MetaRef {
    return { block: this.compressed, offset: this.used };
  }

  /** Uncompressed bytes appended so far. */
  get length(): number {
    return (this.starts.length - 1) * META_SIZE + this.used;
  }

  /** Where the byte at uncompressed position `pos` (appended already, or the next) lies. */
  at(pos: number): MetaRef {
    const k = Math.floor(pos / META_SIZE);
    if (k >= this.starts.length) throw new Error(`metadata position ${pos} not written yet`);
    return { block: this.starts[k], offset: pos % META_SIZE };
  }

  /** Appends `b`; returns where it starts. */
  append(b: Buffer): MetaRef {
    const ref = this.here;
    for (let o = 0; o < b.length;) {
      const k = b.copy(this.cur, this.used, o);
      o += k;
      this.used += k;
      if (this.used === META_SIZE) this.flush();
    }
    return ref;
  }

  private flush(): void {
    const block = metaBlock(this.cur.subarray(0, this.used), this.stored);
    this.done.push(block);
    this.compressed += block.length;
    this.starts.push(this.compressed);
    this.cur = Buffer.alloc(META_SIZE);
    this.used = 0;
  }

  /** The table's bytes: every block, the last one partial. The stream is not to be appended to after. */
  finish(): Buffer {
    if (this.used > 0) this.flush();
    return Buffer.concat(this.done);
  }
}

/**
 * A table of fixed-size entries (fragment, export, id, xattr id) as
 * mksquashfs's generic_write_table lays it out at `at` (relative to the
 * file system start): the entries in metadata blocks, then `between` (the
 * xattr table's header), then the u64 position of each block. `start` is
 * where the superblock points: the lookup list, or `between` when given.
 */
export function lookupTable(
  entries: Buffer,
  at: number,
  between?: Buffer,
  stored = false,
): { bytes: Buffer; start: number } {
  const parts: Buffer[] = [];
  const positions: number[] = [];
  let pos = at;
  for (let o = 0; o < entries.length; o += META_SIZE) {
    const b = metaBlock(entries.subarray(o, o + META_SIZE), stored);
    positions.push(pos);
    parts.push(b);
    pos += b.length;
  }
  const start = pos;
  if (between) parts.push(between);
  const list = Buffer.alloc(positions.length * 8);
  positions.forEach((p, i) => list.writeBigUInt64LE(BigInt(p), i * 8));
  parts.push(list);
  return { bytes: Buffer.concat(parts), start };
}
