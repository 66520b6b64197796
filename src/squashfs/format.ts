/**
 * A squashfs 4.0 file system read in place, the way the kernel reads it:
 * the superblock, inodes and directories from their metadata blocks, the
 * id and fragment tables through their lookup tables, and a file's bytes
 * block by block, on demand. Nothing is extracted: a walk of the tree
 * costs about what `unsquashfs -l` costs, and a file costs only the blocks
 * asked for. Metadata and fragment blocks are kept in small bounded
 * caches. gzip (zlib) and uncompressed blocks are decoded with node:zlib;
 * the other compressors are refused (`SquashfsError`, code
 * 'compressor') so a caller can fall back to squashfs-tools. Pure: bytes
 * come from a `ByteSource`. The superblock and the format's constants are
 * in `layout.ts`, the inode decoders in `inode.ts`.
 */
import { constants as zc, inflateSync } from 'node:zlib';
import { readInode, type DirInode, type FileInode, type Inode, type InodeTable } from './inode';
import {
  EMPTY,
  META_SIZE,
  NO_FRAGMENT,
  SUPERBLOCK,
  SquashfsError,
  decodeSuperblock,
  type ByteSource,
  type Cursor,
  type MetaBlock,
  type Superblock,
} from './layout';

export { COMPRESSORS, SquashfsError, decodeSuperblock, type ByteSource, type Superblock } from './layout';
export { statMode, type DirInode, type FileInode, type Inode, type LinkInode, type OtherInode } from './inode';

/** Bit 24 of a data block's size word: stored uncompressed; the low 24 bits are the size on disk. */
const BLOCK_UNCOMPRESSED = 1 << 24;
const onDisk = (word: number) => word & 0xffffff;
/** Bit 15 of a metadata block's header: stored uncompressed. */
const META_UNCOMPRESSED = 0x8000;
const MAX_DEPTH = 512;
const PREFIX_SLACK = 1024;
/**
 * The metadata (inode, directory, fragment and id tables) lies at the end
 * of the image, after the data: it is read in one read at open, as
 * unsquashfs reads it, so the walk decodes it synchronously (an await per
 * inode costs more than decoding it). A real image's tables are megabytes
 * (about 50 bytes a file, compressed); more than this is not one.
 */
const MAX_META = 1 << 30;

/** A bounded map that forgets the entry used longest ago. */
class Lru<K, V> {
  private m = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(k: K): V | undefined {
    const v = this.m.get(k);
    if (v !== undefined) {
      this.m.delete(k);
      this.m.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.m.set(k, v);
    if (this.m.size > this.max) this.m.delete(this.m.keys().next().value as K);
  }
}

/** A block's bytes, whole or (not `full`) only a prefix. */
interface Decoded {
  data: Buffer;
  full: boolean;
}

export interface Entry {
  /** `/`, `/usr`, `/usr/bin/ls`... */
  path: string;
  inode: Inode;
}

export class Squashfs {
  private meta = new Lru<number, MetaBlock>(256);
  /** The metadata block read last: a walk reads on in the same block far more often than not. */
  private lastMeta: MetaBlock | undefined;
  private fragBlocks = new Lru<number, Decoded>(8);
  private readonly ids: number[] = [];
  private fragEntries = new Map<number, Buffer>();
  /** The image's tail from the inode table on: every metadata table (MAX_META). */
  private tail: { at: number; bytes: Buffer } = { at: 0, bytes: EMPTY };

  /** The view of this file system the inode decoder reads through. */
  private readonly table: InodeTable;

  private constructor(
    private readonly src: ByteSource,
    readonly sb: Superblock,
  ) {
    this.table = { sb, window: (c, n) => this.window(c, n), take: (c, n) => this.take(c, n), id: (i) => this.id(i) };
  }

  /** Opens the file system at the start of `src`; refuses a compressor it cannot decode. */
  static async open(src: ByteSource): Promise<Squashfs> {
    const sb = decodeSuperblock(await src.read(0, SUPERBLOCK));
    if (sb.compressor !== 'gzip')
      throw new SquashfsError(`${sb.compressor} blocks cannot be decoded here (gzip only)`, 'compressor');
    if (sb.bytesUsed > src.size) throw new SquashfsError(`${sb.bytesUsed} bytes used, the source has ${src.size}`);
    const fs = new Squashfs(src, sb);
    const tailLength = sb.bytesUsed - sb.inodeTable;
    if (sb.inodeTable < SUPERBLOCK || tailLength <= 0)
      throw new SquashfsError('the inode table lies outside the file system');
    if (tailLength > MAX_META)
      throw new SquashfsError(`metadata tables of ${tailLength} bytes, more than a real image has`);
    fs.tail = { at: sb.inodeTable, bytes: await fs.bytes(sb.inodeTable, tailLength, 'the metadata tables') };
    for (let k = 0; k < sb.ids; k++) fs.ids.push(fs.tableEntry(sb.idTable, k, 4, 'the id table').readUInt32LE(0));
    return fs;
  }

  private async bytes(offset: number, length: number, what: string): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.sb.bytesUsed)
      throw new SquashfsError(`${what} lies outside the file system`);
    const b = await this.src.read(offset, length);
    if (b.length < length) throw new SquashfsError(`${what} is cut short`);
    return b;
  }

  /** Bytes of the metadata tables (all in the tail read at open). */
  private metaBytes(offset: number, length: number, what: string): Buffer {
    const t = this.tail;
    if (offset < t.at || length < 0 || offset + length > this.sb.bytesUsed)
      throw new SquashfsError(`${what} lies outside the metadata tables`);
    return t.bytes.subarray(offset - t.at, offset - t.at + length);
  }

  private inflate(b: Buffer, max: number, what: string): Buffer {
    try {
      // chunkSize: the whole block in one call to zlib (its default, 16 KiB, takes eight and a concat).
      return inflateSync(b, { maxOutputLength: max, chunkSize: max, finishFlush: zc.Z_FINISH });
    } catch (e) {
      throw new SquashfsError(`${what}: ${(e as Error).message}`);
    }
  }

  /** One metadata block at `pos`: its bytes and where the next one starts. */
  private metaBlock(pos: number): MetaBlock {
    const last = this.lastMeta;
    if (last && last.pos === pos) return last;
    let block = this.meta.get(pos);
    if (!block) {
      const head = this.metaBytes(pos, 2, 'a metadata block header').readUInt16LE(0);
      const len = head & 0x7fff;
      if (len === 0 || len > META_SIZE) throw new SquashfsError(`metadata block of ${len} bytes at ${pos}`);
      const raw = this.metaBytes(pos + 2, len, 'a metadata block');
      const data = head & META_UNCOMPRESSED ? raw : this.inflate(raw, META_SIZE, `metadata block at ${pos}`);
      block = { pos, data, next: pos + 2 + len };
      this.meta.set(pos, block);
    }
    this.lastMeta = block;
    return block;
  }

  /** `n` bytes from a cursor, across block boundaries; the cursor moves past them. */
  private take(c: Cursor, n: number): Buffer {
    const first = this.metaBlock(c.block);
    if (c.offset + n <= first.data.length) {
      c.offset += n;
      return first.data.subarray(c.offset - n, c.offset);
    }
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const b = this.metaBlock(c.block);
      if (c.offset >= b.data.length) {
        // Past this block (a window read over its end moved the cursor on): into the next.
        c.offset -= b.data.length;
        c.block = b.next;
        continue;
      }
      const k = Math.min(left, b.data.length - c.offset);
      parts.push(b.data.subarray(c.offset, c.offset + k));
      c.offset += k;
      left -= k;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Up to `n` bytes from a cursor without moving it (fewer only where the table ends). */
  private window(c: Cursor, n: number): Buffer {
    const b = this.metaBlock(c.block);
    if (c.offset + n <= b.data.length) return b.data.subarray(c.offset, c.offset + n);
    const head = b.data.subarray(c.offset);
    if (b.next >= this.sb.bytesUsed) return head;
    let next;
    try {
      next = this.metaBlock(b.next);
    } catch (e) {
      // The inode table's last block: what follows is another table, not a continuation.
      if (e instanceof SquashfsError) return head;
      throw e;
    }
    return Buffer.concat([head, next.data.subarray(0, n - head.length)]);
  }

  /** Entry `i` of a table stored in metadata blocks behind a lookup table of u64 positions. */
  private tableEntry(table: number, i: number, size: number, what: string): Buffer {
    const perBlock = META_SIZE / size;
    const ptr = this.metaBytes(table + Math.floor(i / perBlock) * 8, 8, `${what} lookup table`);
    return this.take({ block: Number(ptr.readBigUInt64LE(0)), offset: (i % perBlock) * size }, size);
  }

  private id(i: number): number {
    const v = this.ids[i];
    if (v === undefined) throw new SquashfsError(`id index ${i} of ${this.ids.length}`);
    return v;
  }

  /**
   * The inode an inode reference (metadata block << 16 | offset) points
   * at (decoded by `inode.ts`).
   */
  inode(ref: number): Inode {
    return readInode(this.table, ref);
  }

  /** A directory's entries in stored (sorted) order. */
  list(dir: DirInode): Array<{ name: string; ref: number }> {
    const c: Cursor = { block: this.sb.directoryTable + dir.start, offset: dir.offset };
    // The size counts the "." and ".." squashfs does not store.
    const b = dir.size > 3 ? this.take(c, dir.size - 3) : EMPTY;
    const out: Array<{ name: string; ref: number }> = [];
    let o = 0;
    const cut = (n: number) => {
      if (o + n > b.length) throw new SquashfsError('a directory listing overruns its size');
    };
    while (o < b.length) {
      cut(12);
      const count = b.readUInt32LE(o) + 1;
      // Numbers, not BigInts: a walk makes one per entry, and a BigInt is an allocation.
      const start = b.readUInt32LE(o + 4) * 65536;
      o += 12;
      if (count > 256) throw new SquashfsError(`directory header of ${count} entries`);
      for (let i = 0; i < count; i++) {
        cut(8);
        const offset = b.readUInt16LE(o);
        const len = b.readUInt16LE(o + 6) + 1;
        o += 8;
        cut(len);
        const name = b.toString('utf8', o, o + len);
        o += len;
        if (name === '.' || name === '..' || name.includes('/') || name.includes('\0'))
          throw new SquashfsError(`directory entry named ${JSON.stringify(name)}`);
        out.push({ name, ref: start + offset });
      }
    }
    return out;
  }

  /** Every entry, the root first, each directory before what it holds (the order `unsquashfs -l` prints). */
  *walk(): Generator<Entry> {
    const root = this.inode(this.sb.rootInode);
    yield { path: '/', inode: root };
    if (root.kind !== 'dir') return;
    // One generator and a stack of listings (not one generator per level: each yield would pass through them all).
    const stack: Array<{ prefix: string; items: Array<{ name: string; ref: number }>; next: number }> = [
      { prefix: '', items: this.list(root), next: 0 },
    ];
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.next >= top.items.length) {
        stack.pop();
        continue;
      }
      const { name, ref } = top.items[top.next++];
      const path = `${top.prefix}/${name}`;
      const inode = this.inode(ref);
      yield { path, inode };
      if (inode.kind === 'dir') {
        if (stack.length >= MAX_DEPTH) throw new SquashfsError(`directories nested deeper than ${MAX_DEPTH}`);
        stack.push({ prefix: path, items: this.list(inode), next: 0 });
      }
    }
  }

  /**
   * A data or fragment block whose size word is `word`, decoded at least
   * up to byte `need`. Only a prefix is read and inflated when that is
   * enough: the ELF header of a 100 MiB library costs a kilobyte.
   */
  private async block(at: number, word: number, need: number, what: string): Promise<Decoded> {
    const bs = this.sb.blockSize;
    const len = onDisk(word);
    if (len > bs) throw new SquashfsError(`${what} of ${len} bytes`);
    const compressed = !(word & BLOCK_UNCOMPRESSED);
    // Deflate output is rarely smaller than its input, so need + slack bytes in give `need` out.
    const prefix = need + PREFIX_SLACK;
    if (compressed && prefix < len / 2) {
      const raw = await this.bytes(at, prefix, what);
      let out: Buffer | undefined;
      try {
        out = inflateSync(raw, { maxOutputLength: bs, chunkSize: bs, finishFlush: zc.Z_SYNC_FLUSH });
      } catch {
        out = undefined; // the whole block, below, says what is wrong with it
      }
      if (out && out.length >= need) return { data: out, full: false };
    }
    const raw = await this.bytes(at, len, what);
    return { data: compressed ? this.inflate(raw, bs, `${what} at ${at}`) : raw, full: true };
  }

  /** Data block `i` of a file (zeros for a sparse block), decoded at least up to byte `need`. */
  private async dataBlock(f: FileInode, i: number, at: number, need: number): Promise<Decoded> {
    const want = Math.min(this.sb.blockSize, f.size - i * this.sb.blockSize);
    if (onDisk(f.blocks[i]) === 0) return { data: Buffer.alloc(want), full: true };
    const b = await this.block(at, f.blocks[i], need, 'a data block');
    if (b.full ? b.data.length !== want : b.data.length > want)
      throw new SquashfsError(`a data block at ${at} holds ${b.data.length} bytes, not ${want}`);
    return b;
  }

  /** Fragment block `index`, decoded at least up to byte `need`; the last few kept. */
  private async fragmentBlock(index: number, need: number): Promise<Decoded> {
    const hit = this.fragBlocks.get(index);
    if (hit && (hit.full || hit.data.length >= need)) return hit;
    const e = this.fragment(index);
    const b = await this.block(e.start, e.size, need, 'a fragment block');
    this.fragBlocks.set(index, b);
    return b;
  }

  /** Fragment block `index`: where it starts and its size word (what a writer copying it needs). */
  fragment(index: number): { start: number; size: number } {
    if (index >= this.sb.fragments) throw new SquashfsError(`fragment ${index} of ${this.sb.fragments}`);
    let e = this.fragEntries.get(index);
    if (!e) this.fragEntries.set(index, (e = this.tableEntry(this.sb.fragmentTable, index, 16, 'the fragment table')));
    return { start: Number(e.readBigUInt64LE(0)), size: e.readUInt32LE(8) };
  }

  /**
   * For small files read together: how far into each fragment block they
   * reach. Given to `fileSource`, a shared fragment block is decoded once,
   * that far, rather than again each time a read reaches further into it.
   */
  fragmentReach(files: Iterable<FileInode>): Map<number, number> {
    const reach = new Map<number, number>();
    for (const f of files) {
      // A tail after blocks is skipped: an ELF reader rarely reaches a large file's end.
      if (f.fragment === NO_FRAGMENT || f.blocks.length) continue;
      const end = f.fragmentOffset + f.size - f.blocks.length * this.sb.blockSize;
      if (end > (reach.get(f.fragment) ?? 0)) reach.set(f.fragment, end);
    }
    return reach;
  }

  /**
   * Random access to a regular file's bytes: only the blocks a read
   * touches are read and decoded (the last two kept, as an ELF reader
   * asks for nearby ranges in turn). `reach`: from `fragmentReach`.
   */
  fileSource(f: FileInode, reach?: ReadonlyMap<number, number>): ByteSource {
    const bs = this.sb.blockSize;
    const starts: number[] = [];
    let pos = f.blocksStart;
    for (const w of f.blocks) {
      starts.push(pos);
      pos += onDisk(w);
    }
    const recent = new Lru<number, Decoded>(2);
    const chunk = async (i: number, need: number): Promise<Buffer> => {
      let b = recent.get(i);
      if (b && (b.full || b.data.length >= need)) return b.data;
      if (i < f.blocks.length) b = await this.dataBlock(f, i, starts[i], need);
      else {
        if (f.fragment === NO_FRAGMENT) throw new SquashfsError('a read past the last block');
        const tail = f.size - f.blocks.length * bs;
        const end = f.fragmentOffset + tail;
        const want = f.fragmentOffset + Math.min(need, tail);
        const frag = await this.fragmentBlock(f.fragment, Math.max(want, reach?.get(f.fragment) ?? 0));
        if (frag.full && end > frag.data.length) throw new SquashfsError('a file tail outside its fragment');
        b = { data: frag.data.subarray(f.fragmentOffset, end), full: frag.data.length >= end };
      }
      recent.set(i, b);
      return b.data;
    };
    return {
      size: f.size,
      read: async (offset, length) => {
        const end = Math.min(f.size, offset + length);
        const parts: Buffer[] = [];
        for (let at = offset; at < end;) {
          const i = Math.floor(at / bs);
          const from = at - i * bs;
          const b = await chunk(i, Math.min(bs, end - i * bs));
          const to = Math.min(b.length, end - i * bs);
          parts.push(b.subarray(from, to));
          at = i * bs + to;
        }
        return parts.length === 1 ? parts[0] : Buffer.concat(parts);
      },
    };
  }
}
