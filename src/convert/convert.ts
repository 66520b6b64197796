/**
 * `convert`: a SOURCE (an image in the engine, or a `docker save` archive)
 * to a SIF, with the native converters or by driving apptainer/singularity.
 * Natively, an image in the engine is streamed from the engine's export
 * (engine.ts) and an archive is flattened from the file (native.ts);
 * apptainer and singularity get an archive, saved to a temp file beside
 * the output for an image in the engine.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InputError, RefusedError, throwIfAborted } from '../errors';
import { defaultVerdictDir, readVerdict, verdictHolds } from '../engine/verdict';
import { startChild } from '../util/process';
import type { Processes } from '../util/processes';
import { connectEngine, inspectImageRef } from '../engine/client';
import type { ImageEngine } from '../engine/engine';
import { convertFromEngine } from './from-engine';
import { readSif } from '../sif/file';
import { removeDeadTemps, tempNameFor } from '../util/files';
import { openDockerArchive } from './archive';
import { LABEL, imageLabels } from '../validate/labels';
import { targetInside } from '../validate/paths';
import { dockerhashOf, sifFileName } from '../recipe/names';
import { convertNative } from './during-read';
import type { ConvertResult } from './native';
import type { Compression } from './squash-options';
import type { SourceRef } from './singularity';

export type Source = { kind: 'docker-daemon'; ref: string } | { kind: 'docker-archive'; path: string };
export type Backend = 'native' | 'apptainer' | 'singularity';

export function parseSource(text: string): Source {
  const m = /^(docker-daemon|docker-archive):(?:\/\/)?(.+)$/.exec(text);
  if (!m)
    throw new InputError(
      'bad-source',
      `source ${JSON.stringify(text)} is not docker-daemon:REF or docker-archive:PATH`,
    );
  return m[1] === 'docker-daemon'
    ? { kind: 'docker-daemon', ref: m[2] }
    : { kind: 'docker-archive', path: path.resolve(m[2]) };
}

export function parseBackend(text: string): Backend {
  if (text === 'native' || text === 'apptainer' || text === 'singularity') return text;
  throw new InputError('bad-backend', `backend ${JSON.stringify(text)} is not native, apptainer or singularity`);
}

export interface ConvertOptions {
  backend?: Backend;
  fixPerms?: boolean;
  deterministic?: boolean;
  signal?: AbortSignal;
  /** The engine that holds a docker-daemon: image (default: DOCKER_HOST or the local socket). */
  engine?: ImageEngine;
  /** Native backend: squashfs compressor and mksquashfs memory. */
  compression?: Compression;
  mem?: string;
  /**
   * A sifkit-built image (it has a definition-hash label) without a passing
   * leak-scan verdict for its ID: 'warn' (sifkit convert) or 'refuse'. Images
   * sifkit did not build are not asked; the release pipeline converts only
   * the image its build returned, which build returns only once scanned.
   */
  scanVerdict?: 'warn' | 'refuse';
  verdictDir?: string;
  onWarning?: (message: string) => void;
  /** mksquashfs -processors (a Slurm task's CPUs); mksquashfs's own default otherwise. */
  processors?: number;
  /** Where mksquashfs, apptainer and singularity run (default: this host's programs). */
  processes?: Processes;
}

/** Applies the scan-verdict rule to an image about to be converted. */
async function checkScanVerdict(
  imageId: string,
  labels: Record<string, string> | null | undefined,
  opts: ConvertOptions,
): Promise<void> {
  if (!opts.scanVerdict || !labels?.[LABEL.definitionHash]) return;
  if (verdictHolds(await readVerdict(opts.verdictDir ?? defaultVerdictDir(), imageId), imageId)) return;
  const message = `image ${dockerhashOf(imageId)} was built by sifkit but has no passing leak scan for its ID (interrupted, failed, or built elsewhere)`;
  if (opts.scanVerdict === 'refuse')
    throw new RefusedError('unscanned-image', message, {
      hint: 'run sifkit build again: it scans the image before any use',
    });
  opts.onWarning?.(`${message}; converting anyway`);
}

export interface ConvertRecord {
  out: string;
  backend: Backend;
  source: string;
  imageId?: string;
  arch?: string;
  size: number;
  partitionSize?: number;
  files?: number;
  compression?: Compression;
  mksquashfsPeakMiB?: number;
  /** Why the conversion took two passes, not one during the read of the layers. */
  twoPassesBecause?: string;
  durationMs: number;
  labels?: Record<string, string>;
}

/** Saves an engine image to `file` through the Engine API. */
export async function saveImage(ref: string, file: string, signal?: AbortSignal, engine?: ImageEngine): Promise<void> {
  const docker = engine ?? (await connectEngine(signal));
  await inspectImageRef(docker, ref);
  const stream = await docker.saveImage(ref);
  await pipeline(stream, createWriteStream(file, { flags: 'wx' }), { signal });
}

/** Runs `fn` with a docker archive for the source, cleaning up what it saved. */
async function withArchive<T>(
  source: Source,
  out: string,
  signal: AbortSignal | undefined,
  engine: ImageEngine | undefined,
  fn: (archive: string, ref: SourceRef) => Promise<T>,
): Promise<T> {
  if (source.kind === 'docker-archive') {
    try {
      await fs.access(source.path);
    } catch {
      throw new InputError('no-archive', `no archive at ${source.path}`);
    }
    return fn(source.path, { bootstrap: 'docker-archive', from: path.basename(source.path) });
  }
  const spoolFor = out.replace(/\.sif$/, '') + '.tar';
  await removeDeadTemps(spoolFor);
  const spool = tempNameFor(spoolFor);
  try {
    await saveImage(source.ref, spool, signal, engine);
    return await fn(spool, { bootstrap: 'docker-daemon', from: source.ref });
  } finally {
    await fs.rm(spool, { force: true });
  }
}

/** Drives `apptainer|singularity build [--fix-perms] OUT docker-archive://A`. */
async function convertWithTool(bin: Backend, archive: string, out: string, opts: ConvertOptions): Promise<void> {
  await removeDeadTemps(out);
  const tmp = tempNameFor(out);
  const args = ['build', ...(opts.fixPerms ? ['--fix-perms'] : []), tmp, `docker-archive://${archive}`];
  try {
    await startChild(bin, args, {
      signal: opts.signal,
      processes: opts.processes,
      stdout: 'inherit',
      echoStderr: true, // the tool's own progress, as it comes
      label: `${bin} build`,
      failCode: 'backend-failed',
      missing: {
        code: 'no-backend',
        message: `${bin} is not installed here`,
        hint: 'use --backend native, which needs only squashfs-tools',
      },
    }).done;
    await readSif(tmp);
    await fs.rename(tmp, out);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** LUMI's name, `<stem>-dockerhash-<12 hex>.sif`, from the labels render put in (checked by the one label reader). */
export function conventionalName(
  labels: Record<string, string> | null | undefined,
  imageId: string,
  source = 'the image',
): string {
  if (!labels?.[LABEL.stem])
    throw new InputError('no-stem', `${source} carries no ${LABEL.stem} label, so its SIF name is unknown`, {
      hint: 'give one with -o OUT.sif',
    });
  const l = imageLabels(labels, source, { dockerhash: dockerhashOf(imageId) });
  return sifFileName(l.stem, l.dockerhash);
}

/** The record of a native conversion of `sourceText` into `out`, begun at `started`. */
export function recordOf(sourceText: string, out: string, started: number, r: ConvertResult): ConvertRecord {
  return {
    out,
    backend: 'native',
    source: sourceText,
    imageId: r.imageId,
    arch: r.arch,
    size: Number(r.sif.fileSize),
    partitionSize: r.partitionSize,
    files: r.files,
    compression: r.compression,
    mksquashfsPeakMiB: r.mksquashfsPeakMiB,
    twoPassesBecause: r.twoPassesBecause,
    durationMs: Date.now() - started,
    labels: r.labels,
  };
}

/**
 * Converts SOURCE to OUT; without OUT, to the conventional name in
 * `outDir` (default: the current directory).
 */
export function convert(
  sourceText: string,
  outArg: string | undefined,
  opts: ConvertOptions & { outDir?: string } = {},
): Promise<ConvertRecord> {
  return convertSource(parseSource(sourceText), outArg, opts);
}

/** The source's text form, as `convert` takes it (for records and messages). */
export function sourceText(source: Source): string {
  return source.kind === 'docker-daemon' ? `docker-daemon:${source.ref}` : `docker-archive:${source.path}`;
}

/** Converts a parsed SOURCE (a caller holding an image ID or an archive path passes it as it is). */
export async function convertSource(
  source: Source,
  outArg: string | undefined,
  opts: ConvertOptions & { outDir?: string } = {},
): Promise<ConvertRecord> {
  const started = Date.now();
  const text = sourceText(source);
  const backend = opts.backend ?? 'native';
  const dir = outArg ? path.dirname(path.resolve(outArg)) : path.resolve(opts.outDir ?? '.');
  try {
    if (!(await fs.stat(dir)).isDirectory()) throw new Error();
  } catch {
    throw new InputError('no-out-dir', `the output directory ${dir} does not exist`);
  }
  throwIfAborted(opts.signal);
  const squash = {
    fixPerms: opts.fixPerms,
    deterministic: opts.deterministic,
    signal: opts.signal,
    compression: opts.compression,
    mem: opts.mem,
    processors: opts.processors,
    processes: opts.processes,
  };
  if (backend === 'native' && source.kind === 'docker-daemon') {
    const docker = opts.engine ?? (await connectEngine(opts.signal));
    const info = await inspectImageRef(docker, source.ref);
    await checkScanVerdict(info.id, info.labels, opts);
    const out = outArg
      ? path.resolve(outArg)
      : await targetInside(dir, conventionalName(info.labels, info.id, `image ${source.ref}`));
    return recordOf(text, out, started, await convertFromEngine(docker, source.ref, out, { ...squash, info }));
  }
  return withArchive(source, path.join(dir, 'image.sif'), opts.signal, opts.engine, async (archivePath, ref) => {
    const archive = await openDockerArchive(archivePath);
    await checkScanVerdict(archive.imageId, archive.config.config?.Labels, opts);
    const out = outArg
      ? path.resolve(outArg)
      : await targetInside(dir, conventionalName(archive.config.config?.Labels, archive.imageId, archivePath));
    if (backend !== 'native') {
      await convertWithTool(backend, archivePath, out, opts);
      const size = (await fs.stat(out)).size;
      return { out, backend, source: text, imageId: archive.imageId, size, durationMs: Date.now() - started };
    }
    return recordOf(text, out, started, await convertNative(archive, out, { ...squash, source: ref }));
  });
}
