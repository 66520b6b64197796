/**
 * One read of an image: a single `docker save` stream out of the engine,
 * teed to three readers at once: the archive file the tree keeps, the
 * leak scan, and the converter (the layers flattened on their headers,
 * and each layer squashed by its own mksquashfs, as they stream past:
 * during-read.ts). The slowest reader sets the pace (the tee pauses the
 * engine's stream until every reader drained), so memory stays flat
 * whatever the image's size.
 *
 * Nothing is published until the whole stream was read and the scan's
 * verdict was given: a refused image leaves neither archive nor SIF. The
 * converter then writes the file system's tables over the layers' blocks
 * (or, where it cannot, streams the surviving files out of the archive
 * just written into one mksquashfs); no other copy of the image goes to
 * disk. The SIF is published first and
 * the archive last, so an archive under its name always has its SIF
 * beside it; an interruption leaves only temporary names, which the next
 * run removes (removeDeadTemps) and does again.
 */
import { promises as fs } from 'node:fs';
import { PassThrough, pipeline, type Writable } from 'node:stream';
import { InputError, InterruptedError, throwIfAborted } from '../errors';
import type { ImageEngine } from '../engine/engine';
import { scanImageArchive, type LeakScanResult, type ScanNeedles } from '../fileserver/leakscan';
import { coalesce } from '../util/coalesce';
import { createFileSink } from '../util/direct-file';
import { escapeForMessage } from '../validate/names';
import { fsyncPath, renameIntoPlace, removeDeadTemps, tempNameFor } from '../util/files';
import { openDockerArchive } from './archive';
import { DuringRead, whyTwoPasses } from './during-read';
import { FlatTree, type TarHeader } from './flatten';
import { layerHeaders, tee } from './layer-stream';
import { convertFlattened, type NativeOptions } from './native';
import type { ConvertResult } from './squash';

export interface OneReadOptions extends Omit<NativeOptions, 'signal'> {
  signal: AbortSignal;
  /** Where the archive goes. */
  archive: string;
  /** Where the SIF goes; none: the read gives the archive (and the scan) only. */
  sif?: string;
  /** What the leak scan looks for; none: no scan (the image was judged before). */
  needles?: ScanNeedles;
  /**
   * Judges the scan once the whole image was read, before anything is
   * published; throws to refuse (the temporary archive is removed).
   */
  judge?: (scan: LeakScanResult) => Promise<void>;
  /** Where each phase is, for a progress line. */
  onProgress?: (line: string) => void;
}

export interface OneReadResult {
  archiveSize: number;
  scan?: LeakScanResult;
  convert?: ConvertResult;
}

/**
 * Reads image `imageId` out of `engine` once: archive, scan (with
 * `needles`) and, with `sif`, the SIF. See the module comment for the
 * order in which things are judged and published.
 */
export async function saveScanConvert(
  engine: ImageEngine,
  imageId: string,
  opts: OneReadOptions,
): Promise<OneReadResult> {
  const { signal } = opts;
  await removeDeadTemps(opts.archive);
  const tmp = tempNameFor(opts.archive);
  let during: DuringRead | undefined;
  try {
    opts.onProgress?.(
      `docker save -> ${[opts.needles && 'leak scan', 'archive', opts.sif && 'converter'].filter(Boolean).join(' + ')}`,
    );
    throwIfAborted(signal);
    // In big chunks: see coalesce.ts. pipeline() carries an error either way (the engine's, a destroy).
    const source = pipeline(await engine.saveImage(imageId), coalesce(), () => undefined);
    const onAbort = () => source.destroy(new InterruptedError());
    signal.addEventListener('abort', onAbort, { once: true });
    let scanned: Promise<LeakScanResult> | undefined;
    let headers: Promise<Map<string, TarHeader[]>> | undefined;
    during = opts.sif ? await DuringRead.open(opts.sif, { ...opts, signal }) : undefined;
    try {
      if (signal.aborted) onAbort();
      // Past the page cache where it can be: see direct-file.ts.
      const { sink: file, written } = await createFileSink(tmp);
      const sinks: Writable[] = [file];
      const readers: Array<Promise<unknown>> = [written];
      if (opts.needles) {
        const p = new PassThrough({ highWaterMark: 1 << 20 });
        sinks.push(p);
        readers.push((scanned = scanImageArchive(p, opts.needles, signal)));
      }
      if (opts.sif) {
        const p = new PassThrough({ highWaterMark: 1 << 20 });
        sinks.push(p);
        readers.push((headers = layerHeaders(p, signal, during?.squash)));
      }
      // The tee watches the sinks it is given: every one, so a reader that fails stops the read
      // (given before the readers were added, it missed their failures and the read hung).
      readers.push(tee(source, sinks));
      // Every reader's end is waited for; the first failure of any stops the others (tee destroys them all).
      const settled = await Promise.allSettled(readers);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) {
        for (const s of sinks) s.destroy();
        source.destroy();
        throw signal.aborted ? new InterruptedError('interrupted while reading the image') : failed.reason;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    // The archive goes to disk while the scan is judged and the SIF finished; it is waited for before its rename.
    const synced = fsyncPath(tmp);
    synced.catch(() => undefined);
    const scan = scanned ? await scanned : undefined;
    if (scan && opts.judge) await opts.judge(scan);
    throwIfAborted(signal);
    let convert: ConvertResult | undefined;
    if (opts.sif && headers) {
      opts.onProgress?.(during ? `squashfs tables -> ${opts.sif}` : `mksquashfs -> ${opts.sif}`);
      const archive = await openDockerArchive(tmp);
      const byMember = await headers;
      // A layer the first pass could not read as a tar would be missing from the tree: never a SIF without it.
      const unread = archive.layerNames.findIndex((name) => !byMember.has(name));
      if (unread >= 0)
        throw new InputError(
          'bad-layer',
          `layer ${unread + 1} of image ${escapeForMessage(imageId)} is not a tar (plain or gzip'd): sifkit cannot convert it`,
        );
      const tree = new FlatTree();
      archive.layerNames.forEach((name, layer) => {
        (byMember.get(name) ?? []).forEach((h, seq) => tree.apply(layer, seq, h));
      });
      convert = during
        ? await during.finish(archive, byMember, tree)
        : {
            ...(await convertFlattened(archive, tree, opts.sif, { ...opts, signal })),
            twoPassesBecause: whyTwoPasses(opts),
          };
      if (convert.twoPassesBecause) opts.onProgress?.(`converted in two passes: ${convert.twoPassesBecause}`);
    }
    await synced;
    const archiveSize = (await fs.stat(tmp)).size;
    await renameIntoPlace(tmp, opts.archive);
    return { archiveSize, scan, convert };
  } finally {
    await during?.abandon();
    await fs.rm(tmp, { force: true });
  }
}
