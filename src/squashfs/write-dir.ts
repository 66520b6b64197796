/**
 * A directory's listing as mksquashfs's add_dir builds it: runs of entries
 * under headers, a new header when 256 entries are under one, when an
 * entry's inode lies in another inode metadata block, when its inode
 * number is more than an int16 away from the header's, or when the
 * listing since the last index point would pass 8 KiB; in that last case
 * the header is also an index point (an extended directory's index lets
 * the kernel's lookup and readdir start near a name instead of at the
 * first entry). Pure.
 */
import { META_SIZE } from './layout';
import type { MetaRef, MetaStream } from './write-meta';

const HEADER = 12;
const ENTRY = 8;

/** An index point: where in the listing a header starts, and the name of its first entry. */
export interface DirIndex {
  index: number;
  name: Buffer;
}

export class DirListing {
  /** The listing so far, in a buffer grown by doubling (an allocation per entry cost more). */
  private buf = Buffer.alloc(1024);
  private size = 0;
  /** Where the open header is (-1: none yet). */
  private header = -1;
  private count = 0;
  private block = -1;
  private base = 0;
  /** Where the listing was last indexed (mksquashfs's index_count_p). */
  private indexedAt = 0;
  readonly index: DirIndex[] = [];
  entries = 0;
  /** Names and entries without headers, mksquashfs's measure for an extended directory. */
  nameBytes = 0;

  /** Adds one entry: the inode at `ref` (numbered `inode`), of basic inode type `type`. */
  add(ref: MetaRef, inode: number, name: Buffer, type: number): void {
    const delta = inode - this.base;
    const overflows = this.header >= 0 && this.size + ENTRY + name.length - this.indexedAt > META_SIZE;
    this.room(HEADER + ENTRY + name.length);
    const b = this.buf;
    if (this.count === 256 || ref.block !== this.block || delta > 32767 || delta < -32768 || overflows) {
      if (this.header >= 0 && overflows) {
        this.index.push({ index: this.size, name });
        this.indexedAt = this.size;
      }
      this.closeHeader();
      this.header = this.size;
      b.writeUInt32LE(ref.block, this.size + 4);
      b.writeUInt32LE(inode, this.size + 8);
      this.size += HEADER;
      this.block = ref.block;
      this.base = inode;
      this.count = 0;
    }
    const o = this.size;
    b.writeUInt16LE(ref.offset, o);
    b.writeInt16LE(inode - this.base, o + 2);
    b.writeUInt16LE(type, o + 4);
    b.writeUInt16LE(name.length - 1, o + 6);
    name.copy(b, o + ENTRY);
    this.size += ENTRY + name.length;
    this.count++;
    this.entries++;
    this.nameBytes += ENTRY + name.length;
  }

  private room(n: number): void {
    if (this.size + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.size + n));
    this.buf.copy(bigger, 0, 0, this.size);
    this.buf = bigger;
  }

  private closeHeader(): void {
    if (this.header >= 0) this.buf.writeUInt32LE(this.count - 1, this.header);
  }

  /** The listing's bytes (empty for an empty directory). */
  bytes(): Buffer {
    this.closeHeader();
    return this.buf.subarray(0, this.size);
  }
}

/** Appends a listing to the directory table; returns where it starts and its index entries' bytes. */
export function placeListing(
  stream: MetaStream,
  listing: DirListing,
): { start: MetaRef; size: number; index: Buffer[] } {
  const at = stream.length;
  const bytes = listing.bytes();
  const start = stream.append(bytes);
  const index = listing.index.map((i) => {
    const b = Buffer.alloc(12);
    b.writeUInt32LE(i.index, 0);
    // The block holding the header, so the kernel's (start offset + index) % 8 KiB lands on it.
    b.writeUInt32LE(stream.at(at + i.index).block, 4);
    b.writeUInt32LE(i.name.length - 1, 8);
    return Buffer.concat([b, i.name]);
  });
  return { start, size: bytes.length, index };
}
