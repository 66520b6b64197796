/**
 * The compat commands' library side: read a host snapshot, take one, and
 * check an image (a SIF file, or an image in an engine: `CompatImage`) against
 * one or more snapshots.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import type { ImageEngine } from '../engine/engine';
import { openRegular, readRegularFile } from '../util/files';
import { parseJsonDocument } from '../validate/schema';
import { hostSnapshotSchema, type HostSnapshot } from '../validate/schemas/host';
import { bindsFromEasyconfig, bindsFromModule, parseBindList, type ModuleBinds } from './binds';
import { checkImage, type CompatReport } from './check';
import { engineImageFiles, sifImageFiles, type ReadImageOptions } from './image';
import type { ImageFiles } from './view';
import { MPI_LEVELS, type MpiLevel } from './mpi';

/**
 * More than any real host's binds give (LUMI's /opt/cray is a few MiB of JSON), and under the longest
 * string V8 makes: a bigger file is refused in one line before it is read, not a crash while reading it.
 */
export const MAX_SNAPSHOT_BYTES = 256 << 20;

export async function readSnapshot(file: string): Promise<HostSnapshot> {
  const fh = await openRegular(file, 'host snapshot');
  let text: string;
  try {
    const size = (await fh.stat()).size;
    if (size > MAX_SNAPSHOT_BYTES)
      throw new InputError(
        'bad-snapshot',
        `${file} is ${size} bytes: more than a host snapshot holds (${MAX_SNAPSHOT_BYTES >> 20} MiB)`,
      );
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  return parseJsonDocument(hostSnapshotSchema, text, file, 'bad-snapshot');
}

export type BindSource =
  | { kind: 'bind'; list: string }
  | { kind: 'module'; file: string }
  | { kind: 'easyconfig'; file: string; installdir?: string };

/** The binds (and LD_LIBRARY_PATH) a snapshot is taken of. */
export async function bindsOf(src: BindSource): Promise<ModuleBinds & { from: HostSnapshot['from'] }> {
  if (src.kind === 'bind')
    return { binds: parseBindList(src.list, '--bind'), ldLibraryPath: [], from: { kind: 'bind' } };
  const text = await readRegularFile(src.file, src.kind === 'module' ? 'module file' : 'EasyConfig');
  const from = { kind: src.kind, file: path.resolve(src.file) };
  return {
    ...(src.kind === 'module' ? bindsFromModule(text, src.file) : bindsFromEasyconfig(text, src.file, src.installdir)),
    from,
  };
}

export function parseMpiLevel(s: string): MpiLevel {
  if ((MPI_LEVELS as readonly string[]).includes(s)) return s as MpiLevel;
  throw new InputError('bad-mpi-level', `--mpi-level ${JSON.stringify(s)} is not major, full or strict`);
}

export interface CompatOptions extends ReadImageOptions {
  mpiLevel?: MpiLevel;
  /** For docker-daemon: images. */
  engine?: () => Promise<ImageEngine>;
}

/** An image to check: a SIF file, or an image in the engine by reference. */
export type CompatImage = { kind: 'sif'; path: string } | { kind: 'engine'; ref: string };

/** The command line's IMAGE, read once at the edge: `docker-daemon:REF`, else the path of a SIF. */
export function parseCompatImage(text: string): CompatImage {
  // Anything after the prefix is the engine's reference, checked there (a line break too).
  const m = /^docker-daemon:(?:\/\/)?([\s\S]*)$/.exec(text);
  return m ? { kind: 'engine', ref: m[1] } : { kind: 'sif', path: path.resolve(text) };
}

/** How reports name an image: the SIF's path, or `docker-daemon:REF`. */
export function compatImageName(image: CompatImage): string {
  return image.kind === 'sif' ? image.path : `docker-daemon:${image.ref}`;
}

/** Reads an image's files once: a SIF by path, or an image in the engine. */
export async function readCompatImage(image: CompatImage, opts: CompatOptions): Promise<ImageFiles> {
  if (image.kind === 'engine') {
    if (!opts.engine) throw new InputError('no-engine', `${compatImageName(image)}: no image engine to read it from`);
    return engineImageFiles(await opts.engine(), image.ref, opts);
  }
  await fs.access(image.path);
  return sifImageFiles(image.path, opts);
}

/** One image against each snapshot, its files read once. */
export async function checkCompat(
  image: CompatImage,
  hosts: HostSnapshot[],
  opts: CompatOptions = {},
): Promise<CompatReport[]> {
  const files = await readCompatImage(image, opts);
  const name = compatImageName(image);
  return hosts.map((h) => checkImage(name, files, h, { mpiLevel: opts.mpiLevel }));
}
