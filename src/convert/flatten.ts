/**
 * Layer flattening by the OCI rules, on headers only. Layers are applied
 * base first; the tree keeps, for every final path, which layer member
 * supplies it. Contents are never held: regular files point at the member
 * (layer, sequence number) whose bytes they get, so a second pass streams
 * each file once. Memory grows with the number of paths, not with bytes.
 *
 * Regular files are inodes shared by every path hard-linked to them. A
 * link keeps the inode it named even when a later layer replaces the
 * target's path, which is what the engine's overlay shows.
 */
import { InputError } from '../errors';
import { memberPath } from '../util/tar-member';
import type { TarHeader } from '../util/tar-walk';

export type EntryType = 'file' | 'directory' | 'symlink' | 'character-device' | 'block-device' | 'fifo';

/** What we keep of a tar header. */
export interface Entry {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  mtime: Date;
  size: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes carried as pax `SCHILY.xattr.*` records. */
  xattrs?: Record<string, string>;
}

export interface Inode {
  entry: Entry;
  /** Where the bytes come from: a layer member, or bytes we add ourselves. */
  layer: number;
  seq: number;
  content?: Buffer;
}

export type Node =
  | { kind: 'dir'; layer: number; entry: Entry; children: Map<string, Node> }
  | { kind: 'file'; layer: number; inode: Inode }
  | { kind: 'other'; layer: number; entry: Entry };

/** The tar header fields the flattener reads (tar-stream's names). */
export type { TarHeader };

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * A NUL byte no file name holds, and mksquashfs (C strings) would cut the
 * name there: a pax path `etc/passwd\0x` would land on `etc/passwd`, a path
 * the flattener and the leak scan never saw. Only a pax record can carry one.
 */
function refuseNul(s: string, what: string, where: string): void {
  if (s.includes('\0'))
    throw new InputError(
      'bad-member-name',
      `${where}: ${what} ${JSON.stringify(s)} holds a NUL byte, which no file name can`,
    );
}

/** `./a//b/` → `a/b`; refuses absolute paths and `..` (tar-slip), and NUL bytes. */
export function normalizeMemberPath(name: string, where: string): string {
  refuseNul(name, 'path', where);
  if (name.startsWith('/'))
    throw new InputError('tar-slip', `${where}: absolute path ${JSON.stringify(name)} in a layer`);
  const p = memberPath(name);
  if (p.split('/').includes('..'))
    throw new InputError('tar-slip', `${where}: path ${JSON.stringify(name)} climbs out of the root with ..`);
  return p;
}

/** A pax record's integer (ids too big for the ustar field go there; tar-stream leaves them in `pax`). */
function paxInt(v: string | undefined): number | undefined {
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

export function toEntry(h: TarHeader, type: EntryType): Entry {
  if (type === 'symlink') refuseNul(h.linkname ?? '', 'symlink target', `member ${JSON.stringify(h.name)}`);
  const xattrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(h.pax ?? {})) if (k.startsWith('SCHILY.xattr.')) xattrs[k] = v;
  const paxTime =
    h.pax?.mtime !== undefined && /^-?\d+(\.\d+)?$/.test(h.pax.mtime)
      ? new Date(Math.floor(Number(h.pax.mtime)) * 1000)
      : undefined;
  return {
    type,
    mode: (h.mode ?? (type === 'directory' ? 0o755 : 0o644)) & 0o7777,
    uid: paxInt(h.pax?.uid) ?? h.uid ?? 0,
    gid: paxInt(h.pax?.gid) ?? h.gid ?? 0,
    uname: h.uname || undefined,
    gname: h.gname || undefined,
    mtime: paxTime ?? h.mtime ?? new Date(0),
    size: type === 'file' ? (h.size ?? 0) : 0,
    linkname: type === 'symlink' ? (h.linkname ?? '') : undefined,
    devmajor: h.devmajor,
    devminor: h.devminor,
    xattrs: Object.keys(xattrs).length ? xattrs : undefined,
  };
}

export function dirEntry(mode = 0o755, mtime = new Date(0)): Entry {
  return { type: 'directory', mode, uid: 0, gid: 0, mtime, size: 0 };
}

export class FlatTree {
  readonly root: Extract<Node, { kind: 'dir' }> = { kind: 'dir', layer: -1, entry: dirEntry(), children: new Map() };
  /** Applies one member of layer `layer` (0 = base), `seq` its position in that layer. */
  apply(layer: number, seq: number, h: TarHeader): void {
    const where = `layer ${layer + 1}`;
    const p = normalizeMemberPath(h.name, where);
    const type = h.type ?? 'file';
    // The root's own attributes are fixed by the converter, not by layers.
    if (p === '') return;
    const parts = p.split('/');
    const base = parts.pop() as string;
    const parent = this.parentDir(parts, layer, where, p);
    if (base.startsWith(WHITEOUT)) {
      if (base === OPAQUE) hideLower(parent, layer);
      else {
        const victim = parent.children.get(base.slice(WHITEOUT.length));
        if (victim && victim.layer < layer) parent.children.delete(base.slice(WHITEOUT.length));
      }
      return;
    }
    const existing = parent.children.get(base);
    switch (type) {
      case 'directory':
        if (existing?.kind === 'dir') {
          existing.entry = toEntry(h, 'directory');
          existing.layer = layer;
        } else parent.children.set(base, { kind: 'dir', layer, entry: toEntry(h, 'directory'), children: new Map() });
        return;
      case 'link': {
        const targetPath = normalizeMemberPath(h.linkname ?? '', where);
        if (targetPath === p) return;
        const target = this.lookup(targetPath);
        if (!target || target.kind === 'dir')
          throw new InputError(
            'bad-layer',
            `${where}: hard link ${p} names ${targetPath}, which is ${target ? 'a directory' : 'not in the image'}`,
          );
        parent.children.set(
          base,
          target.kind === 'file'
            ? { kind: 'file', layer, inode: target.inode }
            : { kind: 'other', layer, entry: target.entry },
        );
        return;
      }
      case 'file':
      case 'contiguous-file':
        parent.children.set(base, { kind: 'file', layer, inode: { entry: toEntry(h, 'file'), layer, seq } });
        return;
      case 'symlink':
      case 'character-device':
      case 'block-device':
      case 'fifo':
        parent.children.set(base, { kind: 'other', layer, entry: toEntry(h, type) });
        return;
      default:
        throw new InputError('bad-layer', `${where}: ${p} has tar type ${type}, which a layer cannot hold`);
    }
  }

  /**
   * The directory a member goes into. A missing parent is made, as the
   * engine's extractor does; a parent that is a symlink is refused, since
   * writing through it would land wherever it points.
   */
  private parentDir(parts: string[], layer: number, where: string, full: string): Extract<Node, { kind: 'dir' }> {
    let dir = this.root;
    for (const [i, name] of parts.entries()) {
      let next = dir.children.get(name);
      if (!next) {
        next = { kind: 'dir', layer, entry: dirEntry(), children: new Map() };
        dir.children.set(name, next);
      }
      if (next.kind !== 'dir') {
        const at = parts.slice(0, i + 1).join('/');
        if (next.kind === 'other' && next.entry.type === 'symlink')
          throw new InputError(
            'tar-slip',
            `${where}: ${full} would be written through the symlink ${at} -> ${next.entry.linkname}`,
          );
        throw new InputError(
          'bad-layer',
          `${where}: ${full} needs ${at} to be a directory, but it is a ${next.kind === 'file' ? 'file' : next.entry.type}`,
        );
      }
      dir = next;
    }
    return dir;
  }

  /** The node at a path, without following symlinks. */
  lookup(p: string): Node | undefined {
    let node: Node = this.root;
    for (const name of p.split('/').filter(Boolean)) {
      if (node.kind !== 'dir') return undefined;
      const next: Node | undefined = node.children.get(name);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /** The node at a path, following symlinks inside the tree (for /bin/sh). */
  resolve(p: string, hops = 0): Node | undefined {
    if (hops > 40) return undefined;
    const parts = p.split('/').filter(Boolean);
    let node: Node = this.root;
    for (const [i, name] of parts.entries()) {
      if (node.kind !== 'dir') return undefined;
      const next: Node | undefined = node.children.get(name);
      if (!next) return undefined;
      if (next.kind === 'other' && next.entry.type === 'symlink') {
        const link = next.entry.linkname ?? '';
        const dir = parts.slice(0, i).join('/');
        const target = link.startsWith('/') ? link : `${dir}/${link}`;
        const rest = parts.slice(i + 1).join('/');
        return this.resolve(normalizeLoose(rest ? `${target}/${rest}` : target), hops + 1);
      }
      node = next;
    }
    return node;
  }

  /** Puts a node we make ourselves (apptainer's additions) at a path. */
  put(p: string, node: Node, replace = true): void {
    const parts = p.split('/').filter(Boolean);
    const base = parts.pop() as string;
    let dir = this.root;
    for (const name of parts) {
      let next = dir.children.get(name);
      if (!next || next.kind !== 'dir') {
        next = { kind: 'dir', layer: Number.MAX_SAFE_INTEGER, entry: dirEntry(), children: new Map() };
        dir.children.set(name, next);
      }
      dir = next;
    }
    if (!replace && dir.children.has(base)) return;
    dir.children.set(base, node);
  }
}

/** Resolves `..` against the root instead of refusing it (symlink targets may climb). */
function normalizeLoose(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** An opaque directory hides everything lower layers put under it. */
function hideLower(dir: Extract<Node, { kind: 'dir' }>, layer: number): void {
  for (const [name, child] of dir.children) {
    if (child.layer < layer) dir.children.delete(name);
    else if (child.kind === 'dir') hideLower(child, layer);
  }
}

export interface Placement {
  path: string;
  node: Node;
}

/**
 * Every final path, parents before children, names in byte order, so the
 * output is the same whatever order the layers listed their members in.
 */
export function* walk(dir: Extract<Node, { kind: 'dir' }>, prefix = ''): Generator<Placement> {
  const names = [...dir.children.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    const node = dir.children.get(name) as Node;
    const p = prefix ? `${prefix}/${name}` : name;
    yield { path: p, node };
    if (node.kind === 'dir') yield* walk(node, p);
  }
}

/** Our own additions as tree nodes: above every layer, bytes in hand. */
export function toNode(entry: Entry, content?: Buffer): Node {
  const layer = Number.MAX_SAFE_INTEGER;
  if (entry.type === 'directory') return { kind: 'dir', layer, entry, children: new Map() };
  if (entry.type === 'file')
    return { kind: 'file', layer, inode: { entry, layer: -1, seq: -1, content: content ?? Buffer.alloc(0) } };
  return { kind: 'other', layer, entry };
}
