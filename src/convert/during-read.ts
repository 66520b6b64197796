/**
 * A conversion that runs while the image is read: opened before the
 * read, fed each layer as it streams (layer-squash.ts), finished once the
 * read is whole and judged (layered.ts). Where the layer images cannot
 * give the final tree, it converts the archive in two passes instead
 * (native.ts), which gives the same files.
 *
 * Both readers of an image take this way: the release's one read of the
 * engine's stream (one-read.ts) and the conversion of an archive on disk
 * (`convert docker-archive:`, `verify --reconvert`), which feeds the layers
 * in the order the archive holds them, the order the stream had. The same
 * image thus gives the same SIF, byte for byte, whichever read made it.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { InputError, OperationError, errnoCode, isSifkitError, throwIfAborted } from '../errors';
import { removeDeadTemps, tempNameFor } from '../util/files';
import type { DockerArchive } from './archive';
import { FlatTree, type TarHeader } from './flatten';
import { LayerSquasher } from './layer-squash';
import { headersOf } from './layer-stream';
import { LAYERED_PARTITION_OFFSET, finishLayered, layeredRefusal } from './layered';
import { convertFlattened, convertTwoPass, type NativeOptions } from './native';
import type { ConvertResult } from './squash';

/** `SIFKIT_CONVERT=two-pass` converts after the read, as before (the bench's baseline). */
function twoPassAsked(env = process.env): boolean {
  const v = env.SIFKIT_CONVERT;
  if (v === undefined || v === '' || v === 'during-read') return false;
  if (v === 'two-pass') return true;
  throw new InputError('bad-environment', `SIFKIT_CONVERT=${JSON.stringify(v)} is not during-read or two-pass`, {
    hint: 'unset SIFKIT_CONVERT for the default (during-read)',
  });
}

/** Why this conversion cannot run during the read; undefined when it can. */
export function whyTwoPasses(opts: NativeOptions): string | undefined {
  if (twoPassAsked()) return 'SIFKIT_CONVERT=two-pass';
  const c = opts.compression ?? 'gzip';
  if (c !== 'gzip') return `${c} compression (the tables written during the read are gzip's)`;
  return undefined;
}

export class DuringRead {
  /** Why the two-pass conversion made the SIF, when it did (the result's twoPassesBecause). */
  private fallback?: string;

  private constructor(
    private readonly tmp: string,
    private readonly handle: FileHandle,
    private readonly squasher: LayerSquasher,
    private readonly out: string,
    private readonly opts: NativeOptions,
  ) {}

  /**
   * Opens the SIF's temp file; undefined when the conversion cannot run
   * during the read (a compressor other than gzip: the tables are written
   * here, with zlib; or two passes asked).
   */
  static async open(out: string, opts: NativeOptions): Promise<DuringRead | undefined> {
    if (whyTwoPasses(opts)) return undefined;
    await removeDeadTemps(out);
    const tmp = tempNameFor(out);
    const handle = await fs.open(tmp, 'wx+', 0o644);
    const squasher = new LayerSquasher(handle, tmp, LAYERED_PARTITION_OFFSET, out, opts);
    return new DuringRead(tmp, handle, squasher, out, opts);
  }

  /** Gives a layer member's tar to its mksquashfs. */
  readonly squash = (member: string, tarStream: Readable): Promise<void> => this.squasher.squash(member, tarStream);

  /** After the read (and its verdict): the SIF, from the layer images or in two passes over `archive`. */
  async finish(archive: DockerArchive, headers: Map<string, TarHeader[]>, tree: FlatTree): Promise<ConvertResult> {
    let done: ConvertResult | undefined;
    try {
      await this.squasher.settled();
      this.fallback = layeredRefusal(this.squasher, archive.layerNames, headers);
      if (!this.fallback) {
        done = await finishLayered({
          handle: this.handle,
          tmp: this.tmp,
          out: this.out,
          squasher: this.squasher,
          tree,
          imageId: archive.imageId,
          config: archive.config,
          layerNames: archive.layerNames,
          headers,
          opts: this.opts,
        });
        if (!done) this.fallback = 'a file of the tree is not where its layer image put it';
      }
    } catch (e) {
      if (errnoCode(e) === 'ENOSPC')
        throw new OperationError('disk-full', `no space left while writing ${this.out}; nothing was published`);
      throw e;
    } finally {
      await this.abandon();
    }
    return done ?? { ...(await convertFlattened(archive, tree, this.out, this.opts)), twoPassesBecause: this.fallback };
  }

  /** Closes and removes the temp file (after a publish, its name is gone already). */
  async abandon(): Promise<void> {
    await this.squasher.stop();
    await this.handle.close().catch(() => undefined);
    await fs.rm(this.tmp, { force: true });
  }
}

/** The layers of `archive` once each, in the order the file holds them (the stream's order). */
function inFileOrder(archive: DockerArchive): number[] {
  const first = new Map<string, number>();
  archive.layerNames.forEach((name, i) => {
    if (!first.has(name)) first.set(name, i);
  });
  return [...first.values()].sort((a, b) => archive.layerOffsets[a] - archive.layerOffsets[b]);
}

/**
 * Converts an archive on disk the way the release's read does: each
 * layer read once, its headers flattened and its tar squashed together.
 * A string when that way is not open: why (then the caller's two passes).
 */
export async function convertArchiveDuringRead(
  archive: DockerArchive,
  out: string,
  opts: NativeOptions,
): Promise<ConvertResult | string> {
  const during = await DuringRead.open(out, opts);
  if (!during) return whyTwoPasses(opts) as string;
  try {
    const headers = new Map<string, TarHeader[]>();
    for (const layer of inFileOrder(archive)) {
      throwIfAborted(opts.signal);
      const name = archive.layerNames[layer];
      let list: TarHeader[] | undefined;
      try {
        list = await headersOf(await archive.openLayer(layer), (t) => during.squash(name, t));
      } catch (e) {
        if (isSifkitError(e) || opts.signal?.aborted) throw e;
        throw new InputError(
          'bad-layer',
          `${archive.file}: layer ${layer + 1} is not a readable tar: ${(e as Error).message}`,
        );
      }
      // Not a tar the stream's reader takes: the two passes read it (and say what is wrong with it).
      if (!list) {
        await during.abandon();
        return `layer ${layer + 1} is not a tar the stream's reader takes`;
      }
      headers.set(name, list);
    }
    const tree = new FlatTree();
    archive.layerNames.forEach((name, layer) => {
      (headers.get(name) ?? []).forEach((h, seq) => tree.apply(layer, seq, h));
    });
    return await during.finish(archive, headers, tree);
  } catch (e) {
    await during.abandon();
    throw e;
  }
}

/**
 * Converts an opened docker archive into `out` (a SIF), natively: as the
 * release's read does, or in two passes where that way is not open.
 */
export async function convertNative(archive: DockerArchive, out: string, opts: NativeOptions): Promise<ConvertResult> {
  const r = await convertArchiveDuringRead(archive, out, opts);
  if (typeof r !== 'string') return r;
  return { ...(await convertTwoPass(archive, out, opts)), twoPassesBecause: r };
}
