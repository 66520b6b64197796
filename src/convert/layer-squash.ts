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
 * beside the SIF, removed by the next run when a kill leaves it). The
 * first layer needs none: its mksquashfs writes straight into the SIF's
 * temp file at the partition's offset, where its blocks would be copied
 * to (mksquashfs truncates its output, so only the first may), which
 * spares the copy and the disk pages of that layer's image. A layer
 * mksquashfs refuses (a hard link into a lower layer, a name it cannot
 * hold) is not an error here: the caller falls back to the two-pass
 * conversion, which gives the same files.
 */
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { InterruptedError, OperationError, errnoCode, throwIfAborted } from '../errors';
import { openSquashfs } from '../squashfs/file';
import { dataRefOf } from '../squashfs/data-ref';
import { SUPERBLOCK } from '../squashfs/layout';
import type { DataRef } from '../squashfs/write';
import { DIRECT_ALIGN, alignUp, alignedBuffer, openDirect, writeDirectOr } from '../util/direct-file';
import { tempNameFor } from '../util/files';
import type { Processes } from '../util/processes';
import { runMksquashfs } from './mksquashfs-run';
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
  /** The last layer's mksquashfs and copy: each waits for the one before. */
  private tail: Promise<void> = Promise.resolve();
  /** Every layer's. */
  private readonly jobs: Array<Promise<void>> = [];
  /** The last flush of the partition's blocks to disk (flush()). */
  private flushing: Promise<void> = Promise.resolve();
  /** The SIF's temp file opened past the page cache for the copies (undefined: refused), and their staging buffer. */
  private direct?: Promise<FileHandle | undefined>;
  private stage?: Buffer;
  /** The stops of the mksquashfs runs not yet done. */
  private readonly stops = new Set<AbortController>();

  constructor(
    /** The SIF's temp file, open for writing, and its name. */
    private readonly out: FileHandle,
    private readonly outName: string,
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
   * Squashes layer member `member` from its tar stream. Resolves once the
   * stream was read to its end (by mksquashfs, or drained when mksquashfs
   * refused it), so the next layer may stream while this one's mksquashfs
   * finishes; its blocks then go into the partition in turn, layer after
   * layer in the order they came (`settled` waits for all of that).
   */
  async squash(member: string, tarStream: Readable): Promise<void> {
    // Nothing is in the SIF's temp file before the first layer: its mksquashfs may write (and truncate) it.
    const direct = this.jobs.length === 0;
    const tmp = direct ? this.outName : tempNameFor(this.sif);
    // Its own stop, besides the caller's: a tar stream that fails (a layer refused by its diff ID,
    // another reader's failure) never ends mksquashfs's input, so mksquashfs is killed then.
    const stop = new AbortController();
    this.stops.add(stop);
    const onAbort = () => stop.abort(this.opts.signal?.reason);
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (this.opts.signal?.aborted) onAbort();
    const child = runMksquashfs(
      this.opts.mksquashfs ?? 'mksquashfs',
      tmp,
      direct ? BigInt(this.partitionStart) : 0n,
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
    const previous = this.tail;
    const job = (async () => {
      try {
        const done = await child.done.then(
          () => undefined,
          (e: Error & { code?: string }) => e,
        );
        this.peakMiB = Math.max(this.peakMiB, child.peakMiB());
        throwIfAborted(this.opts.signal);
        await fed;
        // In the order the layers came: the partition's layout is the stream's, the same every time.
        await previous;
        if (done) {
          // mksquashfs ran and refused this layer: the two passes will do. Anything else (not installed) is an error.
          if (done.code !== 'mksquashfs-failed') throw done;
          // A full disk is not the layer's fault: the two passes would meet it again.
          if (/no space left/i.test(done.message)) throw this.diskFull();
          this.layers.set(member, { refused: done.message });
          return;
        }
        try {
          this.layers.set(member, direct ? await this.inPlace() : await this.take(tmp));
          this.flush();
        } catch (e) {
          throw errnoCode(e) === 'ENOSPC' ? this.diskFull() : e;
        }
      } finally {
        this.opts.signal?.removeEventListener('abort', onAbort);
        this.stops.delete(stop);
        // The SIF's temp file is its owner's to remove (during-read.ts), never a layer's.
        if (!direct) await fs.rm(tmp, { force: true });
      }
    })();
    // A failed layer fails every later one's turn too: settled() gives the first failure.
    this.tail = job;
    this.jobs.push(job);
    job.catch(() => undefined);
    await Promise.race([fed, job]);
  }

  /** Waits for every layer's mksquashfs, copy and flush; throws the first failure. */
  async settled(): Promise<void> {
    const all = await Promise.allSettled(this.jobs);
    const failed = all.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    await this.closeDirect();
    if (failed) throw failed.reason;
    await this.flushing;
  }

  /**
   * Sends the partition's blocks so far to disk while later layers are
   * read, so that the SIF's fsync before its publication has only the
   * tables left (it was 0.3 s of the read's end for 1 GiB). A failure is
   * settled()'s: a write error seen here would not be seen again by the
   * final fsync, so it is never dropped.
   */
  private flush(): void {
    this.flushing = this.flushing.then(() => this.out.datasync());
    this.flushing.catch(() => undefined);
  }

  /**
   * Kills every mksquashfs still running and waits until every layer's
   * temp image is gone: each, not only the last (a layer whose stream
   * failed ends before the one it would have waited for).
   */
  async stop(): Promise<void> {
    for (const s of this.stops) s.abort();
    await Promise.allSettled([...this.jobs, this.flushing]);
    await this.closeDirect();
  }

  private async closeDirect(): Promise<void> {
    const d = this.direct;
    this.direct = undefined;
    await (await d?.catch(() => undefined))?.close();
  }

  private diskFull(): OperationError {
    return new OperationError('disk-full', `no space left while writing ${this.sif}; nothing was published`);
  }

  /** Reads where a layer image's files lie, and copies its blocks into the partition after the last layer's. */
  private async take(image: string): Promise<LayerFiles> {
    const { files, blocksEnd } = await this.filesOf(image, 0, this.next - SUPERBLOCK);
    await this.copy(image, SUPERBLOCK, blocksEnd, this.partitionStart + this.next);
    this.next += blocksEnd - SUPERBLOCK;
    return files;
  }

  /** The first layer's files, whose blocks its mksquashfs wrote in place (its tables after them are written over). */
  private async inPlace(): Promise<LayerFiles> {
    const { files, blocksEnd } = await this.filesOf(this.outName, this.partitionStart, 0);
    this.next = blocksEnd;
    return files;
  }

  /** Each regular file's blocks of the squashfs at `offset` in `image`, moved by `shift`, and where its blocks end. */
  private async filesOf(image: string, offset: number, shift: number) {
    const { fs: sq, close } = await openSquashfs(image, offset);
    const files: LayerFiles = new Map();
    try {
      for (const { path: p, inode } of sq.walk())
        if (inode.kind === 'file') files.set(p.slice(1), dataRefOf(sq, inode, shift));
      return { files, blocksEnd: sq.sb.inodeTable };
    } finally {
      await close();
    }
  }

  /**
   * Copies bytes [from, to) of `image` to the SIF at `dest`: the whole
   * blocks of the SIF past the page cache where the file system allows it,
   * the pieces before the first block boundary and after the last one
   * through it. The layers lie end to end, as mksquashfs would put them:
   * the partition's size does not depend on the order they came in.
   */
  private async copy(image: string, from: number, to: number, dest: number): Promise<void> {
    this.direct ??= openDirect(this.outName, constants.O_WRONLY);
    let direct = await this.direct;
    const src = await fs.open(image, 'r');
    try {
      this.stage ??= alignedBuffer(COPY_CHUNK);
      const buf = this.stage;
      // The first read ends at the SIF's next block boundary; every later one starts on one.
      for (let pos = from, at = dest; pos < to;) {
        const want = Math.min(at % DIRECT_ALIGN ? alignUp(at) - at : COPY_CHUNK, to - pos);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await src.read(buf, got, want - got, pos + got);
          if (bytesRead === 0) throw new Error(`${image} ends at ${pos + got}, before its tables at ${to}`);
          got += bytesRead;
        }
        const whole = direct && at % DIRECT_ALIGN === 0 ? Math.floor(got / DIRECT_ALIGN) * DIRECT_ALIGN : 0;
        if (whole > 0 && !(await writeDirectOr(direct, this.out, buf, whole, at))) {
          // Refused after all: the usual way for the rest of this copy and the later ones.
          await this.closeDirect();
          this.direct = Promise.resolve(undefined);
          direct = undefined;
        }
        if (got > whole) await this.out.write(buf, whole, got - whole, at + whole);
        pos += got;
        at += got;
      }
    } finally {
      await src.close();
    }
  }
}
