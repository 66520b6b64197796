/**
 * Encoders of squashfs 4.0's inodes, basic and extended, the mirror of
 * `inode.ts`'s decoders, and mksquashfs's choice between them: a file is
 * extended when it has more than one name, xattrs, sparse blocks, or a
 * size or start past 32 bits; a directory when it has xattrs, more than
 * 256 entries or 8 KiB of entries; the others when they have xattrs. Pure.
 */
import { NO_FRAGMENT } from './layout';

export const NO_XATTR = 0xffffffff;

/** Basic inode types; the extended type of each is 7 more. */
export const TYPE = { dir: 1, file: 2, symlink: 3, block: 4, char: 5, fifo: 6, socket: 7 } as const;
const EXTENDED = 7;

/** The 16 bytes every inode starts with; id indexes already looked up. */
export interface InodeHead {
  mode: number;
  uidIndex: number;
  gidIndex: number;
  mtime: number;
  number: number;
}

/**
 * Inodes are encoded into one buffer used again and again (an allocation
 * per inode cost more than encoding it): what an encoder returns is good
 * until the next call, long enough to be appended to the table. Every
 * byte of it is written.
 */
let scratch = Buffer.alloc(1 << 16);

function head(type: number, h: InodeHead, rest: number): Buffer {
  if (16 + rest > scratch.length) scratch = Buffer.alloc(2 ** Math.ceil(Math.log2(16 + rest)));
  const b = scratch.subarray(0, 16 + rest);
  b.writeUInt16LE(type, 0);
  b.writeUInt16LE(h.mode & 0o7777, 2);
  b.writeUInt16LE(h.uidIndex, 4);
  b.writeUInt16LE(h.gidIndex, 6);
  b.writeUInt32LE(h.mtime, 8);
  b.writeUInt32LE(h.number, 12);
  return b;
}

export interface FileFields {
  size: number;
  blocksStart: number;
  blocks: readonly number[];
  fragment: number;
  fragmentOffset: number;
  nlink: number;
  /** Bytes in sparse blocks (mksquashfs's `sparse`, so stat reports fewer blocks). */
  sparse: number;
  xattr: number;
}

export function fileInode(h: InodeHead, f: FileFields): Buffer {
  const extended = f.nlink > 1 || f.size >= 2 ** 32 || f.blocksStart >= 2 ** 32 || f.sparse > 0 || f.xattr !== NO_XATTR;
  const fixed = extended ? 40 : 16;
  const b = head(extended ? TYPE.file + EXTENDED : TYPE.file, h, fixed + f.blocks.length * 4);
  const fragment = f.fragment === NO_FRAGMENT ? NO_FRAGMENT : f.fragment;
  const offset = f.fragment === NO_FRAGMENT ? 0 : f.fragmentOffset;
  if (extended) {
    b.writeBigUInt64LE(BigInt(f.blocksStart), 16);
    b.writeBigUInt64LE(BigInt(f.size), 24);
    b.writeBigUInt64LE(BigInt(f.sparse && f.sparse >= f.size ? f.size - 1 : f.sparse), 32);
    b.writeUInt32LE(f.nlink, 40);
    b.writeUInt32LE(fragment, 44);
    b.writeUInt32LE(offset, 48);
    b.writeUInt32LE(f.xattr, 52);
  } else {
    b.writeUInt32LE(f.blocksStart, 16);
    b.writeUInt32LE(fragment, 20);
    b.writeUInt32LE(offset, 24);
    b.writeUInt32LE(f.size, 28);
  }
  f.blocks.forEach((w, i) => b.writeUInt32LE(w, 16 + fixed + i * 4));
  return b;
}

export interface DirFields {
  /** The listing: its block (relative to the directory table) and offset; its size + 3. */
  start: number;
  offset: number;
  size: number;
  nlink: number;
  parent: number;
  /** Index entries' bytes (written only into an extended inode). */
  index: Buffer[];
  xattr: number;
  /** mksquashfs's measure: more than 256 entries or 8 KiB of names and entries. */
  large: boolean;
}

export function dirInode(h: InodeHead, d: DirFields): Buffer {
  if (!d.large && d.xattr === NO_XATTR && d.size <= 0xffff) {
    const b = head(TYPE.dir, h, 16);
    b.writeUInt32LE(d.start, 16);
    b.writeUInt32LE(d.nlink, 20);
    b.writeUInt16LE(d.size, 24);
    b.writeUInt16LE(d.offset, 26);
    b.writeUInt32LE(d.parent, 28);
    return b;
  }
  const b = head(TYPE.dir + EXTENDED, h, 24);
  b.writeUInt32LE(d.nlink, 16);
  b.writeUInt32LE(d.size, 20);
  b.writeUInt32LE(d.start, 24);
  b.writeUInt32LE(d.parent, 28);
  b.writeUInt16LE(d.index.length, 32);
  b.writeUInt16LE(d.offset, 34);
  b.writeUInt32LE(d.xattr, 36);
  return Buffer.concat([b, ...d.index]);
}

export function symlinkInode(h: InodeHead, target: Buffer, xattr: number): Buffer {
  const extended = xattr !== NO_XATTR;
  const b = head(extended ? TYPE.symlink + EXTENDED : TYPE.symlink, h, 8 + target.length + (extended ? 4 : 0));
  b.writeUInt32LE(1, 16);
  b.writeUInt32LE(target.length, 20);
  target.copy(b, 24);
  if (extended) b.writeUInt32LE(xattr, 24 + target.length);
  return b;
}

/** A block or character device (with its device number), a fifo or a socket. */
export function specialInode(
  h: InodeHead,
  kind: 'block' | 'char' | 'fifo' | 'socket',
  rdev: number,
  xattr: number,
): Buffer {
  const extended = xattr !== NO_XATTR;
  const device = kind === 'block' || kind === 'char';
  const b = head(TYPE[kind] + (extended ? EXTENDED : 0), h, (device ? 8 : 4) + (extended ? 4 : 0));
  b.writeUInt32LE(1, 16);
  if (device) b.writeUInt32LE(rdev, 20);
  if (extended) b.writeUInt32LE(xattr, device ? 24 : 20);
  return b;
}
