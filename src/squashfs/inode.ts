/**
 * Inodes: their kinds and the decoder of each of squashfs 4.0's inode
 * types (basic and extended directory, file, link, device, fifo and
 * socket), read from the inode table through the metadata reader of the
 * open file system. Pure: the bytes come through `InodeTable`.
 */
import { EMPTY, META_SIZE, NO_FRAGMENT, SquashfsError, type Cursor, type Superblock } from './layout';

const MAX_LINK = 1 << 16;
/** The largest fixed part of an inode (an extended file's). */
const INODE_WINDOW = 56;

/** What decoding an inode needs of the open file system. */
export interface InodeTable {
  readonly sb: Superblock;
  /** Up to `n` bytes from a cursor without moving it (fewer only where the table ends). */
  window(c: Cursor, n: number): Buffer;
  /** `n` bytes from a cursor, across block boundaries; the cursor moves past them. */
  take(c: Cursor, n: number): Buffer;
  /** Entry `i` of the id table. */
  id(i: number): number;
}

interface InodeBase {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  inode: number;
  nlink: number;
}

export interface DirInode extends InodeBase {
  kind: 'dir';
  /** The listing: metadata block (relative to the directory table), offset in it, size + 3. */
  start: number;
  offset: number;
  size: number;
}

export interface FileInode extends InodeBase {
  kind: 'file';
  size: number;
  blocksStart: number;
  fragment: number;
  fragmentOffset: number;
  /** On-disk size of each full block (bit 24: stored uncompressed; 0: a sparse block). */
  blocks: number[];
}

export interface LinkInode extends InodeBase {
  kind: 'link';
  target: string;
}

export interface OtherInode extends InodeBase {
  kind: 'block' | 'char' | 'fifo' | 'socket';
  /** Device number (block and char): the kernel's old encoding, as mksquashfs stores it. */
  rdev: number;
}

export type Inode = DirInode | FileInode | LinkInode | OtherInode;

const S_IF: Record<Inode['kind'], number> = {
  dir: 0o040000,
  file: 0o100000,
  link: 0o120000,
  block: 0o060000,
  char: 0o020000,
  fifo: 0o010000,
  socket: 0o140000,
};

/** st_mode of an inode: its type bits and permissions. */
export function statMode(i: Inode): number {
  return S_IF[i.kind] | (i.mode & 0o7777);
}

/**
 * The inode an inode reference (metadata block << 16 | offset) points
 * at. Its fixed part is decoded from one window of the table (a walk
 * reads thousands: one lookup each), its block list or link target after.
 */
export function readInode(t: InodeTable, ref: number): Inode {
  const c: Cursor = { block: t.sb.inodeTable + Math.floor(ref / 65536), offset: ref % 65536 };
  const h = t.window(c, INODE_WINDOW);
  // Counted from the inode's start: each part is checked with those before it.
  let used = 0;
  const need = (n: number) => {
    used += n;
    if (h.length < used) throw new SquashfsError('an inode is cut short');
    c.offset += n;
  };
  need(16);
  const type = h.readUInt16LE(0);
  // Plain literals below, not spreads: a walk makes one per inode, and spreading costs far more.
  const mode = h.readUInt16LE(2);
  const uid = t.id(h.readUInt16LE(4));
  const gid = t.id(h.readUInt16LE(6));
  const mtime = h.readUInt32LE(8);
  const inode = h.readUInt32LE(12);
  switch (type) {
    case 1:
      need(16);
      return {
        kind: 'dir',
        mode,
        uid,
        gid,
        mtime,
        inode,
        start: h.readUInt32LE(16),
        nlink: h.readUInt32LE(20),
        size: h.readUInt16LE(24),
        offset: h.readUInt16LE(26),
      };
    case 8:
      // Its index (for lookups by name) is not needed for a walk.
      need(24);
      return {
        kind: 'dir',
        mode,
        uid,
        gid,
        mtime,
        inode,
        nlink: h.readUInt32LE(16),
        size: h.readUInt32LE(20),
        start: h.readUInt32LE(24),
        offset: h.readUInt16LE(34),
      };
    case 2:
      need(16);
      return fileInode(t, c, {
        mode,
        uid,
        gid,
        mtime,
        inode,
        blocksStart: h.readUInt32LE(16),
        fragment: h.readUInt32LE(20),
        fragmentOffset: h.readUInt32LE(24),
        size: h.readUInt32LE(28),
        nlink: 1,
      });
    case 9:
      need(40);
      return fileInode(t, c, {
        mode,
        uid,
        gid,
        mtime,
        inode,
        blocksStart: Number(h.readBigUInt64LE(16)),
        size: Number(h.readBigUInt64LE(24)),
        nlink: h.readUInt32LE(40),
        fragment: h.readUInt32LE(44),
        fragmentOffset: h.readUInt32LE(48),
      });
    case 3:
    case 10: {
      need(8);
      const len = h.readUInt32LE(20);
      if (len > MAX_LINK) throw new SquashfsError(`symbolic link of ${len} bytes`);
      const target = t.take(c, len).toString('utf8');
      return { kind: 'link', mode, uid, gid, mtime, inode, nlink: h.readUInt32LE(16), target };
    }
    case 4:
    case 5:
    case 11:
    case 12:
      need(8);
      return {
        kind: type === 4 || type === 11 ? 'block' : 'char',
        nlink: h.readUInt32LE(16),
        rdev: h.readUInt32LE(20),
        mode,
        uid,
        gid,
        mtime,
        inode,
      };
    case 6:
    case 7:
    case 13:
    case 14: {
      need(4);
      const kind = type === 6 || type === 13 ? 'fifo' : 'socket';
      return { kind, mode, uid, gid, mtime, inode, nlink: h.readUInt32LE(16), rdev: 0 };
    }
    default:
      throw new SquashfsError(`inode type ${type}`);
  }
}

/** The rest of a file inode: its block list. */
function fileInode(t: InodeTable, c: Cursor, f: Omit<FileInode, 'kind' | 'blocks'>): FileInode {
  const bs = t.sb.blockSize;
  const count = f.fragment === NO_FRAGMENT ? Math.ceil(f.size / bs) : Math.floor(f.size / bs);
  // The block list lies in the inode table: no longer than its blocks (at least 3 bytes each on disk) decode to.
  const tableMax = ((t.sb.directoryTable - t.sb.inodeTable) / 3 + 1) * META_SIZE;
  if (count * 4 > tableMax)
    throw new SquashfsError(`a file of ${f.size} bytes, more blocks than the inode table holds`);
  const list = count ? t.take(c, count * 4) : EMPTY;
  const blocks: number[] = new Array<number>(count);
  for (let i = 0; i < count; i++) blocks[i] = list.readUInt32LE(i * 4);
  const { mode, uid, gid, mtime, inode, nlink, size, blocksStart, fragment, fragmentOffset } = f;
  return { kind: 'file', mode, uid, gid, mtime, inode, nlink, size, blocksStart, fragment, fragmentOffset, blocks };
}
