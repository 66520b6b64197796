/**
 * Squashes each layer as it streams past, so conversion overlaps the
 * image's read. mksquashfs cannot take an entry back and a later layer
 * may delete or replace any path, so no single mksquashfs can start
 * before the last layer is in. Each layer gets its own `mksquashfs -tar`
 * instead, fed while the layer streams; its compressed blocks (data and
 * fragments, never its tables) are copied into the one partition, one
 * layer after another. Once the flattened tree is known, layered.ts
 * writes the final tables over those blocks: no file is compressed twice.
 *
 * A layer's own image lives only until its blocks are copied (a temp name
 * beside the SIF, removed by the next run when a kill leaves it). A layer
 * mksquashfs refuses (a hard link into a lower layer, a name it cannot
 * hold) is not an error here: the caller falls back to the two-pass
 * conversion, which gives the same files.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { InterruptedError, OperationError, errnoCode, throwIfAborted } from '../errors';
import { openSquashfs } from '../squashfs/file';
import { dataRefOf } from '../squashfs/data-ref';
import { SUPERBLOCK } from '../squashfs/layout';
import type { DataRef } from '../squashfs/write';
import { tempNameFor } from '../util/files';
import type { Processes } from '../util/processes';
import { runMksquashfs } from './squash';
import { DEFAULT_MKSQUASHFS_MEM } from './squash-options';

export interface LayerSquashOptions {
  mksquashfs?: string;
  mem?: string;
  processors?: number;
  processes?: Processes;
  signal?: AbortSignal;
}

/** What one layer's image gave: each regular file's blocks, by path (`usr/bin/ls`), in partition offsets. */
export type LayerFiles = Map<string, DataRef>;

/** Bytes moved at a time when a layer's blocks go into the partition. */
const COPY_CHUNK = 1 << 20;

export class LayerSquasher {
  /** Where the next layer's blocks go, from the partition's start (its superblock is written last, at 0). */
  private next = SUPERBLOCK;
  /** Each layer member's files, or why mksquashfs refused it. */
  readonly layers = new Map<string, LayerFiles | { refused: string }>();
  /** mksquashfs's largest resident memory over the layers (MiB). */
  peakMiB = 0;

  constructor(
    /** The SIF's temp file, open for writing. */
    private readonly out: FileHandle,
    /** Absolute offset of the partition in it. */
    readonly partitionStart: number,
    /** The SIF's final name: layer images get temp names beside it. */
    private readonly sif: string,
    private readonly opts: LayerSquashOptions,
  ) {}

  /** First free byte after every layer's blocks, from the partition's start. */
  get dataEnd(): number {
    return this.next;
  }

  /**
   * Squashes layer member `member` from its tar stream. Resolves once its
   * blocks are in the partition, or once mksquashfs refused it (the rest
   * of the stream is still read, so the other readers go on).
   */
  async squash(member: string, tarStream: Readable): Promise<void> {
    const tmp = tempNameFor(this.sif);
    // Its own stop, besides the caller's: a tar stream that fails (a layer refused by its diff ID,
    // another reader's failure) never ends mksquashfs's input, so mksquashfs is killed then.
    const stop = new AbortController();
    const onAbort = () => stop.abort(this.opts.signal?.reason);
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (this.opts.signal?.aborted) onAbort();
    try {
      const child = runMksquashfs(
        this.opts.mksquashfs ?? 'mksquashfs',
        tmp,
        0n,
        new Date(0),
        { compression: 'gzip', mem: this.opts.mem ?? DEFAULT_MKSQUASHFS_MEM, processors: this.opts.processors },
        stop.signal,
        this.opts.processes,
        // Its xattrs and tables are not kept: the final tables come from the flattened tree.
        ['-no-xattrs'],
      );
      // Piped by hand, not by pipeline(): a layer mksquashfs refuses must not end the tar stream,
      // which the other readers of the image go on reading; the rest of it is drained instead.
      const stdin = child.stdin as NodeJS.WritableStream & { destroy(): void };
      tarStream.pipe(stdin);
      const fed = new Promise<void>((resolve, reject) => {
        tarStream.on('end', resolve);
        tarStream.on('error', reject);
        tarStream.on('close', () => {
          if (!tarStream.readableEnded) reject(new InterruptedError('the layer stream closed before its end'));
        });
      });
      fed.catch(() => stop.abort());
      child.done.catch(() => {
        tarStream.unpipe(stdin);
        stdin.destroy();
        tarStream.resume();
      });
      const [fedOut, done] = await Promise.allSettled([fed, child.done]);
      this.peakMiB = Math.max(this.peakMiB, child.peakMiB());
      throwIfAborted(this.opts.signal);
      if (fedOut.status === 'rejected') throw fedOut.reason;
      if (done.status === 'rejected') {
        // mksquashfs ran and refused this layer: the two passes will do. Anything else (not installed) is an error.
        const why = done.reason as Error & { code?: string };
        if (why.code !== 'mksquashfs-failed') throw why;
        // A full disk is not the layer's fault: the two passes would meet it again.
        if (/no space left/i.test(why.message)) throw this.diskFull();
        this.layers.set(member, { refused: why.message });
        return;
      }
      try {
        this.layers.set(member, await this.take(tmp));
      } catch (e) {
        throw errnoCode(e) === 'ENOSPC' ? this.diskFull() : e;
      }
    } finally {
      this.opts.signal?.removeEventListener('abort', onAbort);
      await fs.rm(tmp, { force: true });
    }
  }

  private diskFull(): OperationError {
    return new OperationError('disk-full', `no space left while writing ${this.sif}; nothing was published`);
  }

  /** Reads where a layer image's files lie, and copies its blocks into the partition after the last layer's. */
  private async take(image: string): Promise<LayerFiles> {
    const { fs: sq, close } = await openSquashfs(image);
    const shift = this.next - SUPERBLOCK;
    const files: LayerFiles = new Map();
    let blocksEnd: number;
    try {
      blocksEnd = sq.sb.inodeTable;
      for (const { path: p, inode } of sq.walk())
        if (inode.kind === 'file') files.set(p.slice(1), dataRefOf(sq, inode, shift));
    } finally {
      await close();
    }
    await this.copy(image, SUPERBLOCK, blocksEnd);
    this.next += blocksEnd - SUPERBLOCK;
    return files;
  }

  /** Copies bytes [from, to) of `image` to the partition at `next`. */
  private async copy(image: string, from: number, to: number): Promise<void> {
    const src = await fs.open(image, 'r');
    try {
      const buf = Buffer.allocUnsafe(COPY_CHUNK);
      let at = this.partitionStart + this.next;
      for (let pos = from; pos < to;) {
        const { bytesRead } = await src.read(buf, 0, Math.min(COPY_CHUNK, to - pos), pos);
        if (bytesRead === 0) throw new Error(`${image} ends at ${pos}, before its tables at ${to}`);
        await this.out.write(buf, 0, bytesRead, at);
        pos += bytesRead;
        at += bytesRead;
      }
    } finally {
      await src.close();
    }
  }
}
