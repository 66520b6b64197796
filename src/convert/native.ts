/**
 * The archive converter: a `docker save` tar (legacy or OCI layout) to a
 * SIF, with no root, no apptainer and no engine. Pass 1 flattens the
 * layers on headers alone; pass 2 streams every surviving file once, in
 * layer order, into `mksquashfs -tar` (squash.ts).
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { InputError, isSifkitError, throwIfAborted } from '../errors';
import type { DockerArchive } from './archive';
import { FlatTree, toNode, walk, type Inode, type TarHeader } from './flatten';
import { elfArch, type SourceRef } from './singularity';
import {
  once,
  prepareImage,
  sniffHead,
  squashToSif,
  tarHeader,
  type ConvertResult,
  type SquashOptions,
} from './squash';

export type { ConvertResult } from './squash';

export interface NativeOptions extends SquashOptions {
  source: SourceRef;
}

/** Streams one layer's tar, handing each member with its sequence number. */
async function eachMember(
  archive: DockerArchive,
  layer: number,
  onEntry: (h: TarHeader, seq: number, body: Readable) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const extract = tar.extract();
  let seq = 0;
  // Errors of our own handler (e.g. the consumer went away) are not the layer's fault.
  let handlerError: Error | undefined;
  extract.on('entry', (h, body, next) => {
    // A member torn down with the layer (our handler failed: mksquashfs went
    // away) emits its 'error' late, maybe with no one listening: never a crash.
    // Whoever reads the member (drain, pipeline) still hears it.
    (body as unknown as Readable).on('error', () => undefined);
    const n = seq++;
    onEntry(h as TarHeader, n, body as unknown as Readable).then(
      () => next(),
      (e: Error) => {
        handlerError = e;
        extract.destroy(e);
      },
    );
  });
  try {
    await pipeline(await archive.openLayer(layer), extract, { signal });
  } catch (e) {
    if (handlerError) throw handlerError;
    // Ours as they are: a layer refused by its diff ID (exit 3), a zstd layer, an interruption.
    if (isSifkitError(e) || signal?.aborted) throw e;
    throw new InputError(
      'bad-layer',
      `${archive.file}: layer ${layer + 1} is not a readable tar: ${(e as Error).message}`,
    );
  }
}

async function drain(body: Readable): Promise<void> {
  body.resume();
  await new Promise<void>((resolve, reject) => {
    body.on('end', resolve);
    body.on('error', reject);
  });
}

/**
 * Emits the flattened tree as one tar stream: first every entry without
 * data (directories, symlinks, devices) and our own small files, parents
 * before children, so `mksquashfs -tar` (first occurrence wins) never
 * invents a directory; then regular files, streamed in layer order, each
 * inode once with its other names as hard links.
 */
async function emit(
  archive: DockerArchive,
  tree: FlatTree,
  pack: tar.Pack,
  opts: NativeOptions,
  shInode: Inode | undefined,
  onElf: (b: Buffer) => void,
): Promise<{ files: number; bytes: number }> {
  const pending = new Map<number, Map<number, { inode: Inode; names: string[] }>>();
  const emitted = new Map<Inode, string>();
  let files = 0;
  let bytes = 0;
  for (const { path: p, node } of walk(tree.root)) {
    if (node.kind === 'dir' || node.kind === 'other') {
      await once(pack, tarHeader(p, node.entry, opts.fixPerms));
      files++;
      continue;
    }
    const inode = node.inode;
    if (inode.content) {
      const first = emitted.get(inode);
      if (first) await once(pack, { ...tarHeader(p, inode.entry), type: 'link', linkname: first, size: 0 });
      else {
        await once(pack, tarHeader(p, inode.entry, opts.fixPerms), inode.content);
        emitted.set(inode, p);
        if (inode === shInode) onElf(inode.content);
      }
      files++;
      continue;
    }
    let byLayer = pending.get(inode.layer);
    if (!byLayer) pending.set(inode.layer, (byLayer = new Map()));
    const slot = byLayer.get(inode.seq);
    if (slot) slot.names.push(p);
    else byLayer.set(inode.seq, { inode, names: [p] });
  }
  for (let layer = 0; layer < archive.layerCount; layer++) {
    const wanted = pending.get(layer);
    if (!wanted) continue;
    throwIfAborted(opts.signal);
    await eachMember(
      archive,
      layer,
      async (h, seq, body) => {
        const slot = wanted.get(seq);
        if (!slot) return drain(body);
        const { inode, names } = slot;
        if (inode === shInode) sniffHead(body, 20, onElf);
        const entry = pack.entry(tarHeader(names[0], inode.entry, opts.fixPerms));
        await pipeline(body, entry);
        bytes += inode.entry.size;
        for (const other of names.slice(1))
          await once(pack, { ...tarHeader(other, inode.entry), type: 'link', linkname: names[0], size: 0 });
        files += names.length;
      },
      opts.signal,
    );
  }
  return { files, bytes };
}

/** Converts an opened docker archive into `out` (a SIF) in two passes: the layers' headers flattened, then pass 2. */
export async function convertTwoPass(archive: DockerArchive, out: string, opts: NativeOptions): Promise<ConvertResult> {
  const tree = new FlatTree();
  for (let layer = 0; layer < archive.layerCount; layer++) {
    throwIfAborted(opts.signal);
    await eachMember(
      archive,
      layer,
      async (h, seq, body) => {
        tree.apply(layer, seq, h);
        await drain(body);
      },
      opts.signal,
    );
  }
  return convertFlattened(archive, tree, out, opts);
}

/**
 * Pass 2 alone, for a tree already flattened from the archive's headers
 * (by pass 1 above, or as the archive streamed past: one-read.ts). The
 * tree's sequence numbers are tar-stream's, member by member, as here.
 */
export async function convertFlattened(
  archive: DockerArchive,
  tree: FlatTree,
  out: string,
  opts: NativeOptions,
): Promise<ConvertResult> {
  const prep = prepareImage(archive.config, archive.imageId, opts.source, opts);
  // The arch is the one of /bin/sh's ELF header, read as it streams past.
  const sh = tree.resolve('bin/sh');
  const shInode = sh?.kind === 'file' ? sh.inode : undefined;
  for (const a of prep.additions) tree.put(a.path, toNode(a.entry, a.content), !a.ifAbsent);
  return squashToSif(out, archive.imageId, prep, opts, async (pack) => {
    let elf: string | undefined;
    const counts = await emit(archive, tree, pack, opts, shInode, (head) => {
      elf = elfArch(head);
    });
    return { ...counts, elfArch: elf };
  });
}
