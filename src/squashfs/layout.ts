/**
 * The on-disk layout of squashfs 4.0 that every part of the reader
 * shares: the superblock and its decoder, the format's constants, the
 * reader's one error and its byte source. Pure.
 */

/** Random access to the image's bytes; `read` may return fewer bytes only at the end. */
export interface ByteSource {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export class SquashfsError extends Error {
  constructor(
    message: string,
    readonly code: 'malformed' | 'compressor' = 'malformed',
  ) {
    super(message);
  }
}

export const COMPRESSORS: Record<number, string> = { 1: 'gzip', 2: 'lzma', 3: 'lzo', 4: 'xz', 5: 'lz4', 6: 'zstd' };

const MAGIC = 0x73717368;
export const SUPERBLOCK = 96;
export const META_SIZE = 8192;
export const NO_FRAGMENT = 0xffffffff;
/** Bounds against corrupt images; mksquashfs allows blocks of 4 KiB to 1 MiB. */
export const MAX_BLOCK = 1 << 20;
export const EMPTY = Buffer.alloc(0);

/** Reads forward through consecutive metadata blocks. */
export interface Cursor {
  block: number;
  offset: number;
}

/** A decoded metadata block: where it starts, its bytes, and where the next one starts. */
export interface MetaBlock {
  pos: number;
  data: Buffer;
  next: number;
}

export interface Superblock {
  inodes: number;
  blockSize: number;
  fragments: number;
  compressor: string;
  flags: number;
  ids: number;
  /** Inode references (block << 16 | offset) are numbers: a block offset is at most 32 bits, so a reference fits 48. */
  rootInode: number;
  bytesUsed: number;
  idTable: number;
  inodeTable: number;
  directoryTable: number;
  fragmentTable: number;
}

export function decodeSuperblock(b: Buffer): Superblock {
  if (b.length < SUPERBLOCK || b.readUInt32LE(0) !== MAGIC) throw new SquashfsError('no squashfs superblock');
  const major = b.readUInt16LE(28);
  const minor = b.readUInt16LE(30);
  if (major !== 4 || minor !== 0) throw new SquashfsError(`squashfs ${major}.${minor}, not 4.0`);
  const blockSize = b.readUInt32LE(12);
  const blockLog = b.readUInt16LE(22);
  if (blockSize < 4096 || blockSize > MAX_BLOCK || 1 << blockLog !== blockSize)
    throw new SquashfsError(`block size ${blockSize} (log ${blockLog})`);
  const id = b.readUInt16LE(20);
  const at = (o: number) => Number(b.readBigUInt64LE(o));
  return {
    inodes: b.readUInt32LE(4),
    blockSize,
    fragments: b.readUInt32LE(16),
    compressor: COMPRESSORS[id] ?? `compressor ${id}`,
    flags: b.readUInt16LE(24),
    ids: b.readUInt16LE(26),
    rootInode: Number(b.readBigUInt64LE(32) & 0xffffffffffffn),
    bytesUsed: at(40),
    idTable: at(48),
    inodeTable: at(64),
    directoryTable: at(72),
    fragmentTable: at(80),
  };
}
