/**
 * The end of a conversion made during the image's read (layer-squash.ts):
 * every layer's blocks are in the partition; the flattened tree says
 * which file of which layer each final path is. This writes the final
 * file system's tables over those blocks, the SIF's objects after the
 * partition, and publishes the SIF.
 *
 * The files are the ones the two-pass conversion (native.ts) gives: the
 * same tree, the same attributes (mode with --fix-perms, owner, times
 * clamped to the image's creation as mksquashfs's SOURCE_DATE_EPOCH
 * does, xattrs), apptainer's additions. Where the layer images cannot
 * say that for sure (a layer mksquashfs refused, a layer naming one path
 * twice, which mksquashfs keeps the first of and the flattener the last),
 * `undefined` says so and the caller converts in two passes instead: the
 * choice depends on the archive's bytes alone, so a conversion made again
 * from the same image takes the same way and gives the same bytes.
 */
import type { FileHandle } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { writeSquashfs, type DataRef, type WAttrs, type WFile, type WNode } from '../squashfs/write';
import { FIRST_PARTITION_OFFSET, finishSifAroundPartition } from '../sif/file';
import { sifkitVersion } from '../provenance';
import { escapeForMessage } from '../validate/names';
import type { ImageConfig } from './archive';
import {
  normalizeMemberPath,
  toNode,
  type Entry,
  type FlatTree,
  type Inode,
  type Node,
  type TarHeader,
} from './flatten';
import type { LayerFiles, LayerSquasher } from './layer-squash';
import type { NativeOptions } from './native';
import { sifUuid } from './reproducible';
import { elfArch } from './singularity';
import { fixMode, prepareImage, systemPartition, type ConvertResult } from './squash';

/** mksquashfs's default block size, which every layer image has (we never pass -b). */
export const LAYER_BLOCK_SIZE = 128 * 1024;

/** Where a partition written during the read starts in its SIF. */
export const LAYERED_PARTITION_OFFSET = Number(FIRST_PARTITION_OFFSET);

export interface LayeredInput {
  /** The SIF's temp file (open) and its name. */
  handle: FileHandle;
  tmp: string;
  out: string;
  squasher: LayerSquasher;
  tree: FlatTree;
  imageId: string;
  config: ImageConfig;
  /** Each layer's member name, base first. */
  layerNames: string[];
  /** Each member's tar headers, in the order the flattener numbered them. */
  headers: Map<string, TarHeader[]>;
  opts: NativeOptions;
}

/** Why the layer images cannot give the final tree; undefined when they can. */
export function layeredRefusal(squasher: LayerSquasher, layerNames: string[], headers: Map<string, TarHeader[]>) {
  for (const [i, name] of layerNames.entries()) {
    const got = squasher.layers.get(name);
    if (!got) return `layer ${i + 1} was not squashed as it streamed`;
    // mksquashfs's words may quote the image's paths: escaped, as every name in a line sifkit prints.
    if ('refused' in got) return `mksquashfs refused layer ${i + 1}: ${escapeForMessage(got.refused, 200)}`;
    const seen = new Set<string>();
    for (const h of headers.get(name) ?? []) {
      const p = normalizeMemberPath(h.name, `layer ${i + 1}`);
      if (seen.has(p)) return `layer ${i + 1} names ${escapeForMessage(p)} twice`;
      seen.add(p);
    }
  }
  return undefined;
}

/** Writes the tables and the SIF; undefined (nothing published) when a file's blocks cannot be found. */
export async function finishLayered(input: LayeredInput): Promise<ConvertResult | undefined> {
  const { tree, opts } = input;
  const prep = prepareImage(input.config, input.imageId, opts.source, opts);
  const sh = tree.resolve('bin/sh');
  const shInode = sh?.kind === 'file' ? sh.inode : undefined;
  for (const a of prep.additions) tree.put(a.path, toNode(a.entry, a.content), !a.ifAbsent);
  const epoch = Math.max(0, Math.floor(prep.buildDate.getTime() / 1000));
  const built = buildTree(input, epoch);
  if (!built) return undefined;
  const { root, files, bytes } = built;
  const start = LAYERED_PARTITION_OFFSET;
  const { bytesUsed } = await writeSquashfs(
    { write: async (buf, position) => void (await input.handle.write(buf, 0, buf.length, position)) },
    {
      partitionStart: start,
      dataEnd: input.squasher.dataEnd,
      blockSize: LAYER_BLOCK_SIZE,
      compression: 'gzip',
      mkfsTime: epoch,
      root,
    },
  );
  const shFile = shInode && built.byInode.get(shInode);
  const elf = shFile ? elfArch(await headOf(input.handle, start, shFile, 20)) : undefined;
  const arch = elf ?? prep.configArch;
  const compression = 'gzip' as const;
  const partitionSize = Math.ceil(bytesUsed / 4096) * 4096;
  const sif = await finishSifAroundPartition(
    input.tmp,
    input.out,
    prep.objects,
    { name: '', partition: systemPartition(arch), size: partitionSize },
    {
      time: prep.buildDate,
      uuid: sifUuid(input.imageId, sifkitVersion(), { compression, fixPerms: Boolean(opts.fixPerms) }),
    },
  );
  return {
    sif,
    imageId: input.imageId,
    arch,
    labels: prep.labels,
    files,
    bytes,
    partitionSize,
    compression,
    mksquashfsPeakMiB: Math.round(input.squasher.peakMiB),
  };
}

/** The final tree for the writer, every layer file pointing at its blocks. */
function buildTree(
  input: LayeredInput,
  epoch: number,
): { root: Extract<WNode, { kind: 'dir' }>; files: number; bytes: number; byInode: Map<Inode, WFile> } | undefined {
  const byInode = new Map<Inode, WFile>();
  const fixPerms = input.opts.fixPerms;
  const attrs = (e: Entry): WAttrs => ({
    mode: fixMode(e, fixPerms) & 0o7777,
    uid: e.uid,
    gid: e.gid,
    // mksquashfs under SOURCE_DATE_EPOCH clamps a later time to it.
    mtime: Math.min(epoch, Math.max(0, Math.floor(e.mtime.getTime() / 1000))),
    xattrs: e.xattrs
      ? Object.entries(e.xattrs).map(([k, v]) => [k.slice('SCHILY.xattr.'.length), Buffer.from(v, 'utf8')])
      : undefined,
  });
  let files = 0;
  let bytes = 0;
  const dataOf = (inode: Inode): DataRef | Buffer | undefined => {
    if (inode.content) return inode.content;
    const name = input.layerNames[inode.layer];
    const layer = input.squasher.layers.get(name) as LayerFiles;
    const h = input.headers.get(name)?.[inode.seq];
    return h && layer.get(normalizeMemberPath(h.name, `layer ${inode.layer + 1}`));
  };
  const convert = (node: Node): WNode | undefined => {
    files++;
    if (node.kind === 'dir') {
      const children = new Map<string, WNode>();
      for (const [name, child] of node.children) {
        const c = convert(child);
        if (!c) return undefined;
        children.set(name, c);
      }
      return { kind: 'dir', attrs: attrs(node.entry), children };
    }
    if (node.kind === 'other') {
      const e = node.entry;
      const a = attrs(e);
      switch (e.type) {
        case 'symlink':
          return { kind: 'symlink', attrs: a, target: e.linkname ?? '' };
        case 'character-device':
        case 'block-device':
          return { kind: e.type === 'block-device' ? 'block' : 'char', attrs: a, rdev: rdevOf(e) };
        default:
          return { kind: 'fifo', attrs: a };
      }
    }
    let file = byInode.get(node.inode);
    if (!file) {
      const data = dataOf(node.inode);
      if (!data) return undefined;
      file = { attrs: attrs(node.inode.entry), size: node.inode.entry.size, data };
      byInode.set(node.inode, file);
      if (!node.inode.content) bytes += node.inode.entry.size;
    }
    return { kind: 'file', file };
  };
  const children = new Map<string, WNode>();
  for (const [name, child] of input.tree.root.children) {
    const c = convert(child);
    if (!c) return undefined;
    children.set(name, c);
  }
  // The root is 0755 root:root at the image's time, as the two-pass conversion's -root-* options make it.
  const root = { kind: 'dir' as const, attrs: { mode: 0o755, uid: 0, gid: 0, mtime: epoch }, children };
  return { root, files, bytes, byInode };
}

/** A device number as mksquashfs stores it: the kernel's old encoding of major and minor. */
function rdevOf(e: Entry): number {
  const major = e.devmajor ?? 0;
  const minor = e.devminor ?? 0;
  return ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12);
}

/** The first `n` bytes of a file in the written partition (for /bin/sh's ELF header). */
async function headOf(handle: FileHandle, start: number, file: WFile, n: number): Promise<Buffer> {
  if (Buffer.isBuffer(file.data)) return file.data.subarray(0, n);
  const ref = file.data;
  const word = ref.blocks.length ? ref.blocks[0] : ref.fragment?.size;
  if (word === undefined || word === 0) return Buffer.alloc(0);
  const at = ref.blocks.length ? ref.blocksStart : (ref.fragment?.start ?? 0);
  const len = word & 0xffffff;
  const raw = Buffer.alloc(len);
  await handle.read(raw, 0, len, start + at);
  const plain = word & (1 << 24) ? raw : inflateSync(raw, { maxOutputLength: LAYER_BLOCK_SIZE });
  const from = ref.blocks.length ? 0 : (ref.fragment?.offset ?? 0);
  return plain.subarray(from, from + n);
}
