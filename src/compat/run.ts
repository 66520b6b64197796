/**
 * The compat commands' library side: read a host snapshot, take one, and
 * check an image (a SIF file, or `docker-daemon:REF` in an engine) against
 * one or more snapshots.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import type { ImageEngine } from '../engine/engine';
import { readRegularFile } from '../util/files';
import { parseJsonDocument } from '../validate/schema';
import { hostSnapshotSchema, type HostSnapshot } from '../validate/schemas/host';
import { bindsFromEasyconfig, bindsFromModule, parseBindList, type ModuleBinds } from './binds';
import { checkImage, type CompatReport } from './check';
import { engineImageFiles, sifImageFiles, type ReadImageOptions } from './image';
import type { ImageFiles } from './linker';
import { MPI_LEVELS, type MpiLevel } from './mpi';

export async function readSnapshot(file: string): Promise<HostSnapshot> {
  return parseJsonDocument(hostSnapshotSchema, await readRegularFile(file, 'host snapshot'), file, 'bad-snapshot');
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

/** Reads an image's files once: a SIF by path, or `docker-daemon:REF`. */
export async function readImageFiles(image: string, opts: CompatOptions): Promise<ImageFiles> {
  const m = /^docker-daemon:(?:\/\/)?(.+)$/.exec(image);
  if (m) {
    if (!opts.engine) throw new InputError('no-engine', `${image}: no image engine to read it from`);
    return engineImageFiles(await opts.engine(), m[1], opts);
  }
  await fs.access(image);
  return sifImageFiles(image, opts);
}

/** One image against each snapshot, its files read once. */
export async function checkCompat(
  image: string,
  hosts: HostSnapshot[],
  opts: CompatOptions = {},
): Promise<CompatReport[]> {
  const files = await readImageFiles(image, opts);
  return hosts.map((h) => checkImage(image, files, h, { mpiLevel: opts.mpiLevel }));
}
