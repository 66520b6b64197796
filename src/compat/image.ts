/**
 * An image's files as the linker check needs them: every path with its
 * kind and link target, the ELF facts of the ELF files, the ld.so.conf
 * files and the image's environment. From a SIF: `unsquashfs -lln` lists
 * the partition (offset from sifkit's SIF reader), then one `unsquashfs
 * -cat` per batch streams only the ELF candidates, split by the sizes the
 * listing gave, keeping only the few ranges each needs (elf/stream.ts);
 * nothing is extracted to disk. From an engine: the export stream of a
 * container that is never started, reading only ELF members.
 */
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { InputError, OperationError, throwIfAborted } from '../errors';
import { ElfCollector } from '../elf/stream';
import { ElfError } from '../elf/format';
import { inspectImageRef } from '../engine/client';
import type { ImageEngine } from '../engine/engine';
import { exportContainer } from '../engine/orphans';
import { inspectSifSync } from '../sif/inspect';
import { SquashfsError } from '../squashfs/format';
import { openSquashfs } from '../squashfs/file';
import { startChild } from '../util/process';
import type { Processes } from '../util/processes';
import { isRegularMember } from '../util/tar-member';
import { LD_CACHE, MAX_LD_CACHE, elfCandidate, isLdconf, ldCacheOf } from './select';
import { squashImageFiles } from './squash-files';
import type { ImageFiles, ViewEntry } from './view';

export interface ReadImageOptions {
  signal?: AbortSignal;
  processes?: Processes;
  /** Files that are ELF but cannot be read (malformed, cut): one line each. */
  warn?: (line: string) => void;
}

/** Files read whole: ld.so.conf and its includes, and the linker's cache. */
function isWhole(p: string, size: number): boolean {
  return isLdconf(p) || (p === LD_CACHE && size <= MAX_LD_CACHE);
}

function envOf(list: string[] | null | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

interface Listed {
  path: string;
  kind: 'file' | 'link' | 'dir' | 'other';
  mode: number;
  size: number;
  link?: string;
}

/** One line of `unsquashfs -lln`: `-rwxr-xr-x 0/0  1234 2024-01-01 00:00 squashfs-root/usr/bin/ls`. */
export function parseListLine(line: string): Listed | undefined {
  const m =
    /^([-dlcbps])([-rwxsStT]{9}) \S+\s+(?:(\d+)|\d+,\s*\d+) \d{4}-\d\d-\d\d \d\d:\d\d squashfs-root(\/.*)?$/.exec(line);
  if (!m) return undefined;
  let mode = 0;
  for (let i = 0; i < 9; i++) mode = (mode << 1) | (m[2][i] !== '-' && m[2][i] !== 'S' && m[2][i] !== 'T' ? 1 : 0);
  const rest = m[4] ?? '/';
  const kind = m[1] === '-' ? 'file' : m[1] === 'd' ? 'dir' : m[1] === 'l' ? 'link' : 'other';
  if (kind === 'link') {
    // A name holding " -> " is ambiguous in this listing; the first split is the one unsquashfs itself would have printed for a plain name.
    const i = rest.indexOf(' -> ');
    if (i < 0) return undefined;
    return { path: rest.slice(0, i), kind, mode, size: 0, link: rest.slice(i + 4) };
  }
  return { path: rest, kind, mode, size: Number(m[3] ?? 0) };
}

/** unsquashfs takes extract names as wildcards: escape them to match themselves. */
function literal(p: string): string {
  return p.slice(1).replace(/[*?[\]\\]/g, '\\$&');
}

/** Argument bytes per `unsquashfs -cat` run (well under ARG_MAX). */
const BATCH_BYTES = 96 << 10;

/** Streams the batch's files; `onFile` gets each one's bytes in order, `onEnd` each file once complete. */
async function catBatch(
  sif: string,
  offset: number,
  batch: Listed[],
  onFile: (f: Listed, chunk: Buffer) => void,
  onEnd: (f: Listed) => void,
  opts: ReadImageOptions,
): Promise<void> {
  const c = startChild('unsquashfs', ['-o', String(offset), '-cat', sif, ...batch.map((f) => literal(f.path))], {
    stdout: 'pipe',
    signal: opts.signal,
    processes: opts.processes,
    label: 'unsquashfs -cat',
    missing: { code: 'no-unsquashfs', hint: 'install squashfs-tools' },
  });
  let i = 0;
  let left = batch[0]?.size ?? 0;
  const skipEmpty = () => {
    while (i < batch.length && left === 0) {
      onEnd(batch[i]);
      left = batch[++i]?.size ?? 0;
    }
  };
  skipEmpty();
  for await (const chunk of c.stdout as AsyncIterable<Buffer>) {
    let at = 0;
    while (at < chunk.length) {
      if (i >= batch.length)
        throw new OperationError(
          'unsquashfs-output',
          `${sif}: unsquashfs -cat gave more bytes than the listing's sizes`,
        );
      const n = Math.min(left, chunk.length - at);
      onFile(batch[i], chunk.subarray(at, at + n));
      at += n;
      left -= n;
      skipEmpty();
    }
  }
  await c.done;
  if (i < batch.length)
    throw new OperationError('unsquashfs-output', `${sif}: unsquashfs -cat ended before ${batch[i].path}`);
}

/**
 * The files of a SIF's root file system: read in place by sifkit's
 * squashfs reader, or, for a compressor it cannot decode (xz, zstd, lz4:
 * Node's zlib has only gzip), through squashfs-tools.
 */
export async function sifImageFiles(sif: string, opts: ReadImageOptions = {}): Promise<ImageFiles> {
  const summary = inspectSifSync(sif);
  if (!summary.partition?.squashfsMagic)
    throw new InputError('no-squashfs', `${sif} has no squashfs root file system partition`);
  const offset = summary.partition.offset;
  const env = { ...envOf(summary.ociConfig?.Env), ...summary.environment };
  let opened;
  try {
    opened = await openSquashfs(sif, offset);
  } catch (e) {
    if (!(e instanceof SquashfsError)) throw e;
    if (e.code !== 'compressor') throw new InputError('bad-squashfs', `${sif}: its squashfs: ${e.message}`);
  }
  if (!opened) return { ...(await unsquashfsFiles(sif, offset, opts)), env };
  try {
    return { ...(await squashImageFiles(opened.fs, { ...opts, name: sif })), env };
  } catch (e) {
    if (e instanceof SquashfsError) throw new InputError('bad-squashfs', `${sif}: its squashfs: ${e.message}`);
    throw e;
  } finally {
    await opened.close();
  }
}

/** The same through `unsquashfs -lln` and `unsquashfs -cat` (exported for the bench's side-by-side). */
export async function unsquashfsFiles(
  sif: string,
  offset: number,
  opts: ReadImageOptions,
): Promise<Omit<ImageFiles, 'env'>> {
  const entries = new Map<string, ViewEntry>();
  const toRead: Listed[] = [];
  const lister = startChild('unsquashfs', ['-lln', '-o', String(offset), sif], {
    stdout: 'pipe',
    signal: opts.signal,
    processes: opts.processes,
    label: 'unsquashfs -lln',
    missing: { code: 'no-unsquashfs', hint: 'install squashfs-tools' },
  });
  for await (const line of createInterface({ input: lister.stdout as Readable, crlfDelay: Infinity })) {
    const f = parseListLine(line);
    if (!f) continue;
    if (f.kind === 'link') entries.set(f.path, { kind: 'link', link: f.link, origin: 'image' });
    else if (f.kind === 'dir') entries.set(f.path, { kind: 'dir', origin: 'image' });
    else if (f.kind === 'file') {
      entries.set(f.path, { kind: 'file', origin: 'image' });
      if (elfCandidate(f.path, f.mode, f.size) || isWhole(f.path, f.size)) toRead.push(f);
    }
  }
  await lister.done;
  const ldconf = new Map<string, string>();
  let ldCache: ImageFiles['ldCache'];
  // One file at a time is open: the stream gives them in order.
  let collector: ElfCollector | undefined;
  let text: Buffer[] = [];
  const ended: Array<Promise<void>> = [];
  const onFile = (f: Listed, chunk: Buffer) => {
    if (isWhole(f.path, f.size)) text.push(Buffer.from(chunk));
    else if (!(collector ??= new ElfCollector(f.size)).done) collector.push(chunk);
  };
  const onEnd = (f: Listed) => {
    if (isWhole(f.path, f.size)) {
      if (f.path === LD_CACHE) ldCache = ldCacheOf(Buffer.concat(text), sif, opts.warn);
      else ldconf.set(f.path, Buffer.concat(text).toString('utf8'));
      text = [];
      return;
    }
    const c = collector ?? new ElfCollector(f.size);
    collector = undefined;
    ended.push(
      c.finish().then(
        (elf) => {
          if (elf) entries.set(f.path, { kind: 'file', elf, origin: 'image' });
        },
        (e: unknown) => {
          if (!(e instanceof ElfError)) throw e;
          opts.warn?.(`${sif}: ${f.path}: ${e.message}; not checked`);
        },
      ),
    );
  };
  let batch: Listed[] = [];
  let bytes = 0;
  const run = async () => {
    if (!batch.length) return;
    await catBatch(sif, offset, batch, onFile, onEnd, opts);
    await Promise.all(ended.splice(0));
    batch = [];
    bytes = 0;
  };
  for (const f of toRead) {
    throwIfAborted(opts.signal);
    batch.push(f);
    bytes += f.path.length + 1;
    if (bytes >= BATCH_BYTES) await run();
  }
  await run();
  return { entries, ldconf, ldCache };
}

/** Marks the export containers of compat, with host:pid (engine/orphans.ts removes a killed run's). */
export const COMPAT_LABEL = 'io.sifkit.compat';

/** The files of an engine's image, from the export of a container never started. */
export async function engineImageFiles(
  engine: ImageEngine,
  ref: string,
  opts: ReadImageOptions = {},
): Promise<ImageFiles> {
  const info = await inspectImageRef(engine, ref);
  // A check killed with -9 could not remove its container: this run does.
  const container = await exportContainer(engine, info.id, COMPAT_LABEL, opts.signal);
  const entries = new Map<string, ViewEntry>();
  const ldconf = new Map<string, string>();
  let ldCache: ImageFiles['ldCache'];
  try {
    const extract = tar.extract();
    extract.on('entry', (h, body, next) => {
      member(h, body as unknown as Readable).then(
        () => next(),
        (e: Error) => extract.destroy(e),
      );
    });
    const member = async (h: tar.Header, body: Readable): Promise<void> => {
      const parts = h.name.split('/').filter((p) => p && p !== '.');
      if (parts.includes('..'))
        throw new InputError('tar-slip', `export of ${ref}: ${JSON.stringify(h.name)} climbs out of the root`);
      const p = `/${parts.join('/')}`;
      const type = h.type ?? 'file';
      if (type === 'directory') entries.set(p, { kind: 'dir', origin: 'image' });
      else if (type === 'symlink') entries.set(p, { kind: 'link', link: h.linkname ?? '', origin: 'image' });
      else if (type === 'link') {
        // A hard link: the same file as one listed before it.
        const target = entries.get(
          `/${(h.linkname ?? '')
            .split('/')
            .filter((x) => x && x !== '.')
            .join('/')}`,
        );
        if (target) entries.set(p, target);
      } else if (isRegularMember(h)) {
        const size = h.size ?? 0;
        entries.set(p, { kind: 'file', origin: 'image' });
        if (isWhole(p, size)) {
          const parts2: Buffer[] = [];
          for await (const c of body) parts2.push(c as Buffer);
          if (p === LD_CACHE) ldCache = ldCacheOf(Buffer.concat(parts2), ref, opts.warn);
          else ldconf.set(p, Buffer.concat(parts2).toString('utf8'));
          return;
        }
        if (elfCandidate(p, h.mode ?? 0, size)) {
          const c = new ElfCollector(size);
          for await (const chunk of body) if (!c.done) c.push(chunk as Buffer);
          try {
            const elf = await c.finish();
            if (elf) entries.set(p, { kind: 'file', elf, origin: 'image' });
          } catch (e) {
            if (!(e instanceof ElfError)) throw e;
            opts.warn?.(`${ref}: ${p}: ${e.message}; not checked`);
          }
          return;
        }
      }
      body.resume();
      await new Promise<void>((resolve) => body.once('end', resolve));
    };
    await pipeline(await container.export(), extract, { signal: opts.signal });
  } finally {
    await container.remove().catch(() => undefined);
  }
  return { entries, ldconf, ldCache, env: envOf(info.config.Env as string[] | undefined) };
}
