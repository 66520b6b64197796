/**
 * A squashfs 4.0 writer for a tree whose file data is already on disk: the
 * compressed blocks of layer images copied into one partition. Only the
 * metadata is written here (inode, directory, fragment, export, id and
 * xattr tables, in mksquashfs's order, since the kernel bounds each table
 * by the next one's start), after the blocks of the few files given as
 * bytes; then zeros to a multiple of 4 KiB, as mksquashfs pads; then the
 * superblock, last, so an interrupted write never looks like a file system.
 * The same tree gives the same bytes: names sorted by their bytes, no clock.
 * Memory: the tables (some 25 bytes an inode, compressed) and a few maps
 * over the inodes; of the data, only the files given as bytes. The two
 * walks are in `write-tree.ts`, the inodes in `write-inode.ts`, listings
 * in `write-dir.ts`, the id, fragment and xattr tables in
 * `write-tables.ts`, metadata blocks in `write-meta.ts`, what the writer
 * is given in `write-types.ts`.
 */
import { InputError } from '../errors';
import { MAX_BLOCK, SUPERBLOCK } from './layout';
import { dataBlock, lookupTable } from './write-meta';
import { plan, writeTables } from './write-tree';
import type { DataRef, WFile, WriteOptions, WriteTarget } from './write-types';

export type { DataRef, WAttrs, WFile, WNode, WriteOptions, WriteTarget } from './write-types';

const MAGIC = 0x73717368;
const GZIP = 1;
const INVALID = 0xffffffffffffffffn;
const FLAG_EXPORTABLE = 0x80;
/** Inodes and directories, fragment table, xattrs, ids: stored uncompressed. */
const FLAGS_UNCOMPRESSED = 0x1 | 0x8 | 0x100 | 0x800;
const FLAG_NO_XATTRS = 0x200;
const PAD = 4096;
/** Buffer files' blocks are gathered into writes of about this much. */
const WRITE_BATCH = 1 << 20;

const bad = (message: string) => new InputError('squashfs', message);

function checkOptions(o: WriteOptions): void {
  const int = (v: number) => Number.isSafeInteger(v) && v >= 0;
  if (o.compression !== 'gzip') throw bad(`compression ${String(o.compression)} (gzip only)`);
  if (!int(o.blockSize) || o.blockSize < 4096 || o.blockSize > MAX_BLOCK || (o.blockSize & (o.blockSize - 1)) !== 0)
    throw bad(`block size ${o.blockSize} (a power of two, 4 KiB to 1 MiB)`);
  if (!int(o.partitionStart) || !int(o.dataEnd) || o.dataEnd < SUPERBLOCK)
    throw bad(`partition start ${o.partitionStart} or data end ${o.dataEnd} (at least ${SUPERBLOCK})`);
  if (!int(o.mkfsTime) || o.mkfsTime >= 2 ** 32) throw bad(`mkfs time ${o.mkfsTime}`);
  if (o.root?.kind !== 'dir') throw bad('the root is not a directory');
}

/** Writes the blocks of the files given as bytes from `at`; returns their references and where they end. */
async function writeBufferFiles(
  out: WriteTarget,
  base: number,
  at: number,
  files: WFile[],
  bs: number,
): Promise<{ refs: Map<WFile, DataRef>; end: number }> {
  const refs = new Map<WFile, DataRef>();
  let pending: Buffer[] = [];
  let pendingAt = at;
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes) await out.write(Buffer.concat(pending), base + pendingAt);
    pendingAt += pendingBytes;
    pending = [];
    pendingBytes = 0;
  };
  let pos = at;
  for (const f of files) {
    const bytes = f.data as Buffer;
    if (bytes.length !== f.size) throw bad(`a file given as ${bytes.length} bytes says it has ${f.size}`);
    const ref: DataRef = { blocksStart: pos, blocks: [] };
    for (let o = 0; o < bytes.length; o += bs) {
      const b = dataBlock(bytes.subarray(o, o + bs));
      ref.blocks.push(b.word);
      pending.push(b.bytes);
      pendingBytes += b.bytes.length;
      pos += b.bytes.length;
    }
    refs.set(f, ref);
    if (pendingBytes >= WRITE_BATCH) await flush();
  }
  await flush();
  return { refs, end: pos };
}

function superblock(f: {
  inodes: number;
  mkfsTime: number;
  blockSize: number;
  fragments: number;
  flags: number;
  ids: number;
  root: bigint;
  bytesUsed: number;
  idTable: number;
  xattrTable: bigint;
  inodeTable: number;
  directoryTable: number;
  fragmentTable: number;
  exportTable: bigint;
}): Buffer {
  const b = Buffer.alloc(SUPERBLOCK);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt32LE(f.inodes, 4);
  b.writeUInt32LE(f.mkfsTime, 8);
  b.writeUInt32LE(f.blockSize, 12);
  b.writeUInt32LE(f.fragments, 16);
  b.writeUInt16LE(GZIP, 20);
  b.writeUInt16LE(Math.log2(f.blockSize), 22);
  b.writeUInt16LE(f.flags, 24);
  b.writeUInt16LE(f.ids, 26);
  b.writeUInt16LE(4, 28);
  b.writeUInt16LE(0, 30);
  b.writeBigUInt64LE(f.root, 32);
  b.writeBigUInt64LE(BigInt(f.bytesUsed), 40);
  b.writeBigUInt64LE(BigInt(f.idTable), 48);
  b.writeBigUInt64LE(f.xattrTable, 56);
  b.writeBigUInt64LE(BigInt(f.inodeTable), 64);
  b.writeBigUInt64LE(BigInt(f.directoryTable), 72);
  b.writeBigUInt64LE(BigInt(f.fragmentTable), 80);
  b.writeBigUInt64LE(f.exportTable, 88);
  return b;
}

/**
 * Writes the file system's metadata after `dataEnd` and its superblock at
 * `partitionStart`. Refuses (InputError) a tree squashfs cannot hold.
 */
export async function writeSquashfs(
  out: WriteTarget,
  opts: WriteOptions,
): Promise<{ bytesUsed: number; inodes: number }> {
  checkOptions(opts);
  const base = opts.partitionStart;
  const p = plan(opts.root);
  const { refs, end } = await writeBufferFiles(
    out,
    base,
    opts.dataEnd,
    p.files.filter((f) => Buffer.isBuffer(f.data)),
    opts.blockSize,
  );
  const stored = opts.uncompressedMetadata ?? false;
  const t = writeTables(p, refs, opts.blockSize, stored);

  const inodeTable = end;
  const directoryTable = inodeTable + t.inodes.length;
  const parts: Buffer[] = [t.inodes, t.directories];
  let at = directoryTable + t.directories.length;
  const place = (table: { bytes: Buffer; start: number }) => {
    parts.push(table.bytes);
    at += table.bytes.length;
    return table.start;
  };
  const fragmentTable = place(lookupTable(t.fragments.entries(), at, undefined, stored));
  const exportable = opts.exportTable ?? true;
  const exportTable = exportable ? BigInt(place(lookupTable(t.exports, at, undefined, stored))) : INVALID;
  const idTable = place(lookupTable(t.ids.entries(), at, undefined, stored));
  const xattrTable = t.xattrs.count ? BigInt(place(t.xattrs.table(at))) : INVALID;
  const bytesUsed = at;
  const padded = Math.ceil(bytesUsed / PAD) * PAD;
  parts.push(Buffer.alloc(padded - bytesUsed));
  await out.write(Buffer.concat(parts), base + inodeTable);

  const sb = superblock({
    inodes: p.inodes,
    mkfsTime: opts.mkfsTime,
    blockSize: opts.blockSize,
    fragments: t.fragments.count,
    flags:
      (exportable ? FLAG_EXPORTABLE : 0) | (t.xattrs.count ? 0 : FLAG_NO_XATTRS) | (stored ? FLAGS_UNCOMPRESSED : 0),
    ids: t.ids.count,
    root: BigInt(t.root.block) * 65536n + BigInt(t.root.offset),
    bytesUsed,
    idTable,
    xattrTable,
    inodeTable,
    directoryTable,
    fragmentTable,
    exportTable,
  });
  await out.write(sb, base);
  return { bytesUsed, inodes: p.inodes };
}
