/**
 * The squashfs writer's two walks of the tree, both in mksquashfs's order
 * (each directory's names sorted by their bytes, depth first). The first
 * checks names, sorts each directory once and numbers the inodes: in
 * that order, one number per inode (a file's other names share it), the
 * root last. The second writes the inode and directory tables: a
 * directory's children first (each subdirectory whole), then its listing,
 * then its inode, so every reference a listing or an inode holds points
 * at bytes already written. Pure: data references come in, tables go out.
 */
import { InputError } from '../errors';
import { NO_FRAGMENT } from './layout';
import { DirListing, placeListing } from './write-dir';
import { TYPE, dirInode, fileInode, specialInode, symlinkInode, type FileFields, type InodeHead } from './write-inode';
import { MetaStream, type MetaRef } from './write-meta';
import { FragmentTable, IdTable, XattrTable } from './write-tables';
import type { DataRef, WAttrs, WFile, WNode } from './write-types';

type Dir = Extract<WNode, { kind: 'dir' }>;
interface Child {
  name: Buffer;
  node: WNode;
}

/** As deep as the reader (`format.ts`) walks. */
const MAX_DEPTH = 512;
const MAX_NAME = 256;
const MAX_LINK = 65535;

export interface Plan {
  root: Dir;
  sorted: Map<Dir, Child[]>;
  /** Inode numbers by node, a file's by its WFile (one for all its names). */
  numbers: Map<object, number>;
  names: Map<WFile, number>;
  inodes: number;
  /** Every file (once), in inode number order. */
  files: WFile[];
}

const bad = (message: string) => new InputError('squashfs', message);

function sortedChildren(dir: Dir, where: string): Child[] {
  const out: Child[] = [];
  for (const [name, node] of dir.children) {
    const b = Buffer.from(name);
    if (!b.length || b.length > MAX_NAME || name === '.' || name === '..' || name.includes('/') || name.includes('\0'))
      throw bad(`${where}: the name ${JSON.stringify(name)} cannot be stored (1 to ${MAX_NAME} bytes, no / or NUL)`);
    out.push({ name: b, node });
  }
  out.sort((a, b) => Buffer.compare(a.name, b.name));
  for (let i = 1; i < out.length; i++)
    if (out[i].name.equals(out[i - 1].name)) throw bad(`${where}: two names of the same bytes ${out[i].name}`);
  return out;
}

const keyOf = (n: WNode): object => (n.kind === 'file' ? n.file : n);

export function plan(root: Dir): Plan {
  const p: Plan = { root, sorted: new Map(), numbers: new Map(), names: new Map(), inodes: 0, files: [] };
  let next = 1;
  p.numbers.set(root, 0);
  const visit = (dir: Dir, where: string, depth: number) => {
    if (depth > MAX_DEPTH) throw bad(`${where}: directories nested deeper than ${MAX_DEPTH}`);
    const children = sortedChildren(dir, where || '/');
    p.sorted.set(dir, children);
    for (const { name, node } of children) {
      const key = keyOf(node);
      if (node.kind === 'file') {
        p.names.set(node.file, (p.names.get(node.file) ?? 0) + 1);
        if (p.numbers.has(key)) continue;
        p.files.push(node.file);
      } else if (p.numbers.has(key))
        throw bad(`${where}/${name}: the same ${node.kind} under two names (only files are hard-linked)`);
      p.numbers.set(key, next++);
      if (node.kind === 'dir') visit(node, `${where}/${name}`, depth + 1);
    }
  };
  visit(root, '', 0);
  p.numbers.set(root, next);
  p.inodes = next;
  return p;
}

export interface Tables {
  inodes: Buffer;
  directories: Buffer;
  root: MetaRef;
  /** The inode reference of every inode, by number - 1. */
  exports: Buffer;
  ids: IdTable;
  fragments: FragmentTable;
  xattrs: XattrTable;
}

function checkAttrs(a: WAttrs, where: () => string): void {
  const u32 = (v: number) => Number.isInteger(v) && v >= 0 && v < 2 ** 32;
  if (!u32(a.uid) || !u32(a.gid) || !u32(a.mtime) || !Number.isInteger(a.mode) || a.mode < 0 || a.mode > 0o7777)
    throw bad(`${where()}: mode, uid, gid or mtime out of range`);
}

/** The fields of a file's inode from its data reference, checked against its size. */
function fileFields(
  f: WFile,
  ref: DataRef,
  bs: number,
  frags: FragmentTable,
  where: () => string,
  more: { nlink: number; xattr: number },
): FileFields {
  const whole = Math.floor(f.size / bs);
  const tail = f.size - whole * bs;
  const count = ref.fragment ? whole : Math.ceil(f.size / bs);
  if (!Number.isSafeInteger(f.size) || f.size < 0 || ref.blocks.length !== count)
    throw bad(`${where()}: ${ref.blocks.length} blocks for ${f.size} bytes (${count} expected)`);
  const word = (w: number) => Number.isInteger(w) && w >= 0 && w < 2 ** 25 && (w & 0xffffff) <= bs;
  let sparse = 0;
  ref.blocks.forEach((w, i) => {
    if (!word(w)) throw bad(`${where()}: block size word ${w}`);
    if ((w & 0xffffff) === 0) sparse += Math.min(bs, f.size - i * bs);
  });
  let fragment = NO_FRAGMENT;
  let fragmentOffset = 0;
  if (ref.fragment) {
    const { start, size, offset } = ref.fragment;
    if (!tail || !word(size) || (size & 0xffffff) === 0 || offset < 0 || offset + tail > bs)
      throw bad(`${where()}: a fragment (offset ${offset}) for a tail of ${tail} bytes`);
    fragment = frags.of(start);
    fragmentOffset = offset;
  }
  const { nlink, xattr } = more;
  return {
    size: f.size,
    blocksStart: ref.blocksStart,
    blocks: ref.blocks,
    fragment,
    fragmentOffset,
    sparse,
    nlink,
    xattr,
  };
}

/** Writes the inode and directory tables of a planned tree; `data` holds the Buffer files' references; `stored`: no block deflated. */
export function writeTables(p: Plan, data: ReadonlyMap<WFile, DataRef>, blockSize: number, stored = false): Tables {
  const inodes = new MetaStream(stored);
  const dirs = new MetaStream(stored);
  const ids = new IdTable();
  const fragments = new FragmentTable(
    p.files.flatMap((f) => (Buffer.isBuffer(f.data) || !f.data.fragment ? [] : [f.data.fragment])),
  );
  const xattrs = new XattrTable(stored);
  const exports = Buffer.alloc(p.inodes * 8);
  const placed = new Map<WFile, MetaRef>();

  const put = (number: number, bytes: Buffer): MetaRef => {
    const ref = inodes.append(bytes);
    // block << 16 | offset, in two halves (a BigInt per inode costs more than the rest of it).
    exports.writeUInt32LE(((ref.block % 65536) * 65536 + ref.offset) >>> 0, (number - 1) * 8);
    exports.writeUInt32LE(Math.floor(ref.block / 65536), (number - 1) * 8 + 4);
    return ref;
  };
  const headOf = (a: WAttrs, number: number, where: () => string): { h: InodeHead; xattr: number } => {
    checkAttrs(a, where);
    const h = { mode: a.mode, uidIndex: ids.of(a.uid), gidIndex: ids.of(a.gid), mtime: a.mtime, number };
    return { h, xattr: xattrs.of(a.xattrs, where) };
  };

  const writeDir = (dir: Dir, number: number, parent: number, where: string): MetaRef => {
    const listing = new DirListing();
    let subdirs = 0;
    for (const { name, node } of p.sorted.get(dir) ?? []) {
      const n = p.numbers.get(keyOf(node)) as number;
      const path = () => `${where}/${name.toString()}`;
      let ref: MetaRef | undefined;
      if (node.kind === 'dir') {
        ref = writeDir(node, n, number, path());
        subdirs++;
      } else if (node.kind === 'file') {
        ref = placed.get(node.file);
        if (!ref) {
          const f = node.file;
          const given = Buffer.isBuffer(f.data) ? data.get(f) : f.data;
          if (!given) throw new Error(`${path()}: no data reference for a Buffer file`);
          const { h, xattr } = headOf(f.attrs, n, path);
          const fields = fileFields(f, given, blockSize, fragments, path, { nlink: p.names.get(f) ?? 1, xattr });
          ref = put(n, fileInode(h, fields));
          placed.set(f, ref);
        }
      } else if (node.kind === 'symlink') {
        const target = Buffer.from(node.target);
        if (target.length > MAX_LINK || node.target.includes('\0'))
          throw bad(`${path()}: a symbolic link target of ${target.length} bytes or with NUL`);
        const { h, xattr } = headOf(node.attrs, n, path);
        ref = put(n, symlinkInode(h, target, xattr));
      } else {
        const rdev = 'rdev' in node ? node.rdev : 0;
        if (!Number.isInteger(rdev) || rdev < 0 || rdev >= 2 ** 32) throw bad(`${path()}: device number ${rdev}`);
        const { h, xattr } = headOf(node.attrs, n, path);
        ref = put(n, specialInode(h, node.kind, rdev, xattr));
      }
      listing.add(ref, n, name, TYPE[node.kind]);
    }
    const placedListing = placeListing(dirs, listing);
    const { h, xattr } = headOf(dir.attrs, number, () => where || '/');
    return put(
      number,
      dirInode(h, {
        start: placedListing.start.block,
        offset: placedListing.start.offset,
        size: placedListing.size + 3,
        nlink: subdirs + 2,
        parent,
        index: placedListing.index,
        xattr,
        large: listing.entries > 256 || listing.nameBytes >= 8192,
      }),
    );
  };

  // The root's parent: one past the last inode, as mksquashfs numbers it.
  const root = writeDir(p.root, p.inodes, p.inodes + 1, '');
  return { inodes: inodes.finish(), directories: dirs.finish(), root, exports, ids, fragments, xattrs };
}
