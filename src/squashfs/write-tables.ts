/**
 * The squashfs writer's smaller tables, each filled as inodes are written
 * (so their order is the inode table's, as mksquashfs's is): the id table
 * (uids and gids, an inode holds 16-bit indexes into it), the fragment
 * table (one entry per fragment block, shared by every file whose tail
 * lies in it) and the xattr table (each distinct set of xattrs once:
 * name/value pairs in metadata blocks, then one id entry per set). Pure.
 */
import { InputError } from '../errors';
import { MetaStream, lookupTable } from './write-meta';

/** Ids an inode can index: the superblock counts them in 16 bits. */
export const MAX_IDS = 65535;
const NONE = 0xffffffff;
const PREFIXES: Array<[string, number]> = [
  ['user.', 0],
  ['trusted.', 1],
  ['security.', 2],
];
/** The kernel's limits: XATTR_NAME_MAX and XATTR_SIZE_MAX. */
const MAX_XATTR_NAME = 255;
const MAX_XATTR_VALUE = 65536;

export class IdTable {
  private readonly index = new Map<number, number>();
  private readonly ids: number[] = [];

  /** The index of `id`, added when new. */
  of(id: number): number {
    let i = this.index.get(id);
    if (i === undefined) {
      if (this.ids.length === MAX_IDS) throw new InputError('squashfs', `more than ${MAX_IDS} distinct uids and gids`);
      i = this.ids.length;
      this.ids.push(id);
      this.index.set(id, i);
    }
    return i;
  }

  get count(): number {
    return this.ids.length;
  }

  entries(): Buffer {
    const b = Buffer.alloc(this.ids.length * 4);
    this.ids.forEach((id, i) => b.writeUInt32LE(id, i * 4));
    return b;
  }
}

export class FragmentTable {
  private readonly index = new Map<number, number>();
  private readonly list: Array<{ start: number; size: number }>;

  /**
   * The fragment blocks the files name, numbered in the order they lie in:
   * mksquashfs numbers them as it writes them, so its index order is the
   * data's (for a tar, the stream's order, not the tree's).
   */
  constructor(blocks: Iterable<{ start: number; size: number }>) {
    const sizes = new Map<number, number>();
    for (const { start, size } of blocks) {
      const known = sizes.get(start);
      if (known !== undefined && known !== size)
        throw new InputError('squashfs', `fragment block at ${start} given with sizes ${known} and ${size}`);
      sizes.set(start, size);
    }
    this.list = [...sizes].sort((a, b) => a[0] - b[0]).map(([start, size]) => ({ start, size }));
    this.list.forEach((f, i) => this.index.set(f.start, i));
  }

  /** The index of the fragment block at `start` (relative to the file system start). */
  of(start: number): number {
    const i = this.index.get(start);
    if (i === undefined) throw new Error(`no fragment block at ${start}`);
    return i;
  }

  get count(): number {
    return this.list.length;
  }

  entries(): Buffer {
    const b = Buffer.alloc(this.list.length * 16);
    this.list.forEach((f, i) => {
      b.writeBigUInt64LE(BigInt(f.start), i * 16);
      b.writeUInt32LE(f.size, i * 16 + 8);
    });
    return b;
  }
}

export class XattrTable {
  private readonly kv: MetaStream;
  private readonly sets = new Map<string, number>();
  private readonly ids: Buffer[] = [];

  constructor(private readonly stored = false) {
    this.kv = new MetaStream(stored);
  }

  /** The xattr id of a set (NONE when nothing in it can be stored: only user, trusted and security are). */
  of(xattrs: ReadonlyArray<readonly [string, Buffer]> | undefined, where: () => string): number {
    if (!xattrs?.length) return NONE;
    const kept: Array<{ type: number; suffix: Buffer; value: Buffer; full: number }> = [];
    const seen = new Set<string>();
    for (const [name, value] of xattrs) {
      const p = PREFIXES.find(([prefix]) => name.startsWith(prefix));
      if (!p) continue; // mksquashfs skips the other namespaces too (system.*: ACLs)
      const full = Buffer.byteLength(name);
      if (name.length === p[0].length || full > MAX_XATTR_NAME || name.includes('\0'))
        throw new InputError('squashfs', `${where()}: xattr name ${JSON.stringify(name)} cannot be stored`);
      if (value.length > MAX_XATTR_VALUE)
        throw new InputError(
          'squashfs',
          `${where()}: xattr ${name} of ${value.length} bytes (at most ${MAX_XATTR_VALUE})`,
        );
      if (seen.has(name)) throw new InputError('squashfs', `${where()}: xattr ${name} given twice`);
      seen.add(name);
      kept.push({ type: p[1], suffix: Buffer.from(name.slice(p[0].length)), value, full });
    }
    if (!kept.length) return NONE;
    const key = kept.map((x) => `${x.type}:${x.suffix.toString('hex')}=${x.value.toString('hex')}`).join(',');
    const known = this.sets.get(key);
    if (known !== undefined) return known;
    const ref = this.kv.here;
    let size = 0;
    for (const x of kept) {
      const head = Buffer.alloc(4);
      head.writeUInt16LE(x.type, 0);
      head.writeUInt16LE(x.suffix.length, 2);
      const vsize = Buffer.alloc(4);
      vsize.writeUInt32LE(x.value.length, 0);
      this.kv.append(Buffer.concat([head, x.suffix, vsize, x.value]));
      // As mksquashfs counts it: each full name with its NUL, and the value.
      size += x.full + 1 + x.value.length;
    }
    const id = Buffer.alloc(16);
    id.writeBigUInt64LE(BigInt(ref.block) * 65536n + BigInt(ref.offset), 0);
    id.writeUInt32LE(kept.length, 8);
    id.writeUInt32LE(size, 12);
    const n = this.ids.length;
    this.ids.push(id);
    this.sets.set(key, n);
    return n;
  }

  get count(): number {
    return this.ids.length;
  }

  /** The pairs, the id table, its header and lookup list, laid out at `at`; `start` for the superblock. */
  table(at: number): { bytes: Buffer; start: number } {
    const kv = this.kv.finish();
    const header = Buffer.alloc(16);
    header.writeBigUInt64LE(BigInt(at), 0);
    header.writeUInt32LE(this.ids.length, 8);
    const ids = lookupTable(Buffer.concat(this.ids), at + kv.length, header, this.stored);
    return { bytes: Buffer.concat([kv, ids.bytes]), start: ids.start };
  }
}
