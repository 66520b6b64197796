/**
 * `sifkit host snapshot`: on a node of the target system, what the binds
 * of a module bring into every container: each shared library under them
 * (by its path in the container) with its dynamic facts, the links among
 * them, and the host's own glibc. Reads headers only, with sifkit's own
 * ELF reader: seconds, also on a login node.
 */
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, errnoCode, throwIfAborted } from '../errors';
import { readElfFile, readElfHandle } from '../elf/file';
import { ElfError } from '../elf/format';
import { sifkitVersion } from '../provenance';
import type { HostBind, HostFile, HostSnapshot } from '../validate/schemas/host';
import { DATA_BINDS, normalisePath, type BindSpec } from './binds';
import { libraryName } from './select';
import { cpuinfoFlags, cpuinfoVendor, x86Level, type X86Level } from './hwcaps';
import { glibcVersion } from './versions';

/** A bind with more entries than this is not a library directory. */
const MAX_ENTRIES = 1_000_000;

export interface SnapshotOptions {
  from: HostSnapshot['from'];
  ldLibraryPath?: string[];
  /** Container paths whose files are not recorded (default DATA_BINDS). */
  skip?: string[];
  signal?: AbortSignal;
  /** Problems that do not stop the snapshot (an unreadable file). */
  warn?: (line: string) => void;
}

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** The glibc this process runs on: the libc mapped into it, else the usual places. */
async function hostGlibc(): Promise<HostSnapshot['glibc']> {
  let mapped: string | undefined;
  try {
    mapped = /\s(\/\S*\/libc(?:\.so\.6|-[\d.]+\.so))$/m.exec(readFileSync('/proc/self/maps', 'utf8'))?.[1];
  } catch {
    mapped = undefined;
  }
  for (const p of [
    mapped,
    '/lib/x86_64-linux-gnu/libc.so.6',
    '/lib64/libc.so.6',
    '/usr/lib64/libc.so.6',
    '/lib/aarch64-linux-gnu/libc.so.6',
  ].filter((x): x is string => Boolean(x))) {
    const elf = await readElfFile(p).catch(() => undefined);
    if (!elf) continue;
    return { path: p, version: glibcVersion(elf.defines) ?? 'unknown', defines: elf.defines };
  }
  return null;
}

/** This CPU's x86-64 level and maker, from /proc/cpuinfo; neither on another architecture or without it. */
function hostCpu(): { x86Level?: X86Level; cpuVendor?: string } {
  if (os.machine() !== 'x86_64') return {};
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return {};
  }
  const vendor = cpuinfoVendor(text);
  return { x86Level: x86Level(cpuinfoFlags(text)), ...(vendor ? { cpuVendor: vendor } : {}) };
}

async function walkBind(b: BindSpec, opts: SnapshotOptions): Promise<HostBind> {
  const bind: HostBind = { spec: b.spec, source: b.source, target: b.target, kind: 'missing', files: [] };
  let st;
  try {
    st = await fs.stat(b.source);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return bind;
    throw e;
  }
  bind.kind = st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';
  const skip = (opts.skip ?? DATA_BINDS).find((s) => under(b.target, s));
  if (skip) {
    bind.skipped = `user data (${skip})`;
    return bind;
  }
  const files: HostFile[] = bind.files;
  const record = async (hostPath: string, at: string, isLink: boolean) => {
    if (isLink) return void files.push({ path: at, link: await fs.readlink(hostPath) });
    if (!libraryName(path.basename(at))) return;
    const fh = await fs.open(hostPath, 'r').catch((e: unknown) => {
      opts.warn?.(`${hostPath}: cannot read (${errnoCode(e) ?? String(e)}); left out`);
      return undefined;
    });
    if (!fh) return;
    try {
      const elf = await readElfHandle(fh, (await fh.stat()).size);
      // A file named as a library that is not one is recorded too (no ELF facts): ld.so stops at it.
      files.push(elf ? { path: at, elf } : { path: at });
    } catch (e) {
      if (!(e instanceof ElfError)) throw e;
      opts.warn?.(`${hostPath}: ${e.message}; recorded as a file the dynamic linker cannot load`);
      files.push({ path: at });
    } finally {
      await fh.close();
    }
  };
  if (bind.kind === 'file') {
    await record(b.source, b.target, false);
    return bind;
  }
  if (bind.kind !== 'directory') return bind;
  let entries = 0;
  const walk = async (dir: string, at: string): Promise<void> => {
    throwIfAborted(opts.signal);
    let list;
    try {
      list = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (errnoCode(e) === 'EACCES') return void opts.warn?.(`${dir}: not readable; left out`);
      throw e;
    }
    for (const d of list.sort((x, y) => (x.name < y.name ? -1 : 1))) {
      if (++entries > MAX_ENTRIES)
        throw new InputError(
          'bind-too-big',
          `${b.source} has more than ${MAX_ENTRIES} entries: not a library directory`,
          { hint: 'leave it out of --bind, or name it in --skip' },
        );
      const hostPath = path.join(dir, d.name);
      const inside = `${at === '/' ? '' : at}/${d.name}`;
      if (d.isDirectory()) await walk(hostPath, inside);
      else if (d.isSymbolicLink() || d.isFile()) await record(hostPath, inside, d.isSymbolicLink());
    }
  };
  await walk(b.source, b.target);
  return bind;
}

/** Takes the snapshot of these binds on this host. */
export async function takeSnapshot(binds: BindSpec[], opts: SnapshotOptions): Promise<HostSnapshot> {
  // Container paths, as the binds' targets are: absolute, without `..`, checked before any walk.
  const skip = (opts.skip ?? DATA_BINDS).map((p) => normalisePath(p, '--skip'));
  const out: HostBind[] = [];
  for (const b of binds) out.push(await walkBind(b, { ...opts, skip }));
  return {
    kind: 'sifkit-host-snapshot',
    version: 1,
    host: os.hostname(),
    takenAt: new Date().toISOString(),
    sifkit: sifkitVersion(),
    arch: os.machine(),
    from: opts.from,
    glibc: await hostGlibc(),
    ...hostCpu(),
    ldLibraryPath: opts.ldLibraryPath ?? [],
    binds: out,
  };
}
