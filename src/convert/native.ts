/**
 * The native Docker → SIF converter: no root, no apptainer, one read of
 * the headers and one of the contents. Pass 1 flattens the layers on
 * headers alone; pass 2 streams every surviving file once, in layer order,
 * into `mksquashfs -tar`, which writes the partition straight into the SIF
 * at its final offset. The SIF appears under its name only when complete.
 */
import { spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { InputError, OperationError, errnoCode, throwIfAborted } from '../errors';
import { DataType, FsType, PartType, Arch } from '../sif/format';
import { finishSifInPlace, partitionOffsetAfter, type SifImage } from '../sif/file';
import { tempNameFor } from '../util/files';
import { DEFAULT_MKSQUASHFS_MEM, type Compression } from './squash-options';
import type { DockerArchive } from './archive';
import { FlatTree, dirEntry, walk, type Entry, type Inode, type Node, type TarHeader } from './flatten';
import {
  ACTIONS, BASE_ENV, CUSTOM_ENV, DOCKER_ENV_SCRIPT, LIBS_ENV, STARTSCRIPT, definitionFile, elfArch, envScript, imageLabels, inspectMetadata, labelsJson, runscript, type SourceRef,
} from './singularity';

export interface NativeOptions {
  source: SourceRef;
  fixPerms?: boolean;
  deterministic?: boolean;
  /** Labels added to labels.json and the inspect metadata (e.g. where it came from). */
  extraLabels?: Record<string, string>;
  signal?: AbortSignal;
  mksquashfs?: string;
  /** Squashfs compressor (default gzip, as apptainer). */
  compression?: Compression;
  /** mksquashfs -mem (default DEFAULT_MKSQUASHFS_MEM). */
  mem?: string;
}

export interface ConvertResult {
  sif: SifImage;
  imageId: string;
  arch: string;
  labels: Record<string, string>;
  files: number;
  bytes: number;
  partitionSize: number;
  compression: Compression;
  /** Peak resident memory of mksquashfs, sampled from /proc (MiB; 0 where /proc is absent). */
  mksquashfsPeakMiB: number;
}

/** Streams one layer's tar, handing each member with its sequence number. */
async function eachMember(archive: DockerArchive, layer: number, onEntry: (h: TarHeader, seq: number, body: Readable) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const extract = tar.extract();
  let seq = 0;
  // Errors of our own handler (e.g. the consumer went away) are not the layer's fault.
  let handlerError: unknown;
  extract.on('entry', (h, body, next) => {
    const n = seq++;
    onEntry(h as TarHeader, n, body as unknown as Readable).then(() => next(), (e) => {
      handlerError = e;
      extract.destroy(e);
    });
  });
  try {
    await pipeline(await archive.openLayer(layer), extract, { signal });
  } catch (e) {
    if (handlerError) throw handlerError;
    if (e instanceof InputError || signal?.aborted) throw e;
    throw new InputError('bad-layer', `${archive.file}: layer ${layer + 1} is not a readable tar: ${(e as Error).message}`);
  }
}

async function drain(body: Readable): Promise<void> {
  body.resume();
  await new Promise<void>((resolve, reject) => {
    body.on('end', resolve);
    body.on('error', reject);
  });
}

function synthetic(content: string, mode: number, mtime: Date): Node {
  const buf = Buffer.from(content);
  return { kind: 'file', layer: Number.MAX_SAFE_INTEGER, inode: { entry: { type: 'file', mode, uid: 0, gid: 0, mtime, size: buf.length }, layer: -1, seq: -1, content: buf } };
}

function symlink(target: string, mtime: Date): Node {
  return { kind: 'other', layer: Number.MAX_SAFE_INTEGER, entry: { type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime, size: 0, linkname: target } };
}

function dir(mtime: Date, mode = 0o755): Node {
  return { kind: 'dir', layer: Number.MAX_SAFE_INTEGER, entry: dirEntry(mode, mtime), children: new Map() };
}

interface Additions {
  env: string;
  run: string;
  labels: Record<string, string>;
  deffile: string;
}

/** apptainer's additions (reference §2), put into the flattened tree. */
function addSingularityTree(tree: FlatTree, add: Additions, mtime: Date): void {
  for (const d of ['dev', 'proc', 'root', 'var', 'var/tmp', 'tmp', 'etc', 'sys', 'home']) tree.put(d, dir(mtime, d.endsWith('tmp') ? 0o1777 : 0o755), false);
  for (const f of ['etc/hosts', 'etc/resolv.conf']) tree.put(f, synthetic('', 0o644, mtime), false);
  tree.put('.singularity.d', dir(mtime));
  for (const d of ['actions', 'env', 'libs']) tree.put(`.singularity.d/${d}`, dir(mtime));
  for (const [name, body] of Object.entries(ACTIONS)) tree.put(`.singularity.d/actions/${name}`, synthetic(body, 0o755, mtime));
  tree.put('.singularity.d/env/01-base.sh', synthetic(BASE_ENV, 0o644, mtime));
  tree.put(DOCKER_ENV_SCRIPT, synthetic(add.env, 0o755, mtime));
  tree.put('.singularity.d/env/90-environment.sh', synthetic(CUSTOM_ENV, 0o644, mtime));
  tree.put('.singularity.d/env/99-base.sh', synthetic(LIBS_ENV, 0o644, mtime));
  tree.put('.singularity.d/runscript', synthetic(add.run, 0o755, mtime));
  tree.put('.singularity.d/startscript', synthetic(STARTSCRIPT, 0o755, mtime));
  tree.put('.singularity.d/labels.json', synthetic(add.labels ? labelsJson(add.labels) : '{}', 0o644, mtime));
  tree.put('.singularity.d/Singularity', synthetic(add.deffile, 0o644, mtime));
  tree.put('singularity', symlink('.singularity.d/runscript', mtime));
  for (const a of ['exec', 'run', 'shell', 'test']) tree.put(`.${a}`, symlink(`.singularity.d/actions/${a}`, mtime));
  tree.put('environment', symlink('.singularity.d/env/90-environment.sh', mtime));
}

function fixMode(e: Entry, fixPerms?: boolean): number {
  if (!fixPerms) return e.mode;
  if (e.type === 'directory') return e.mode | 0o700;
  if (e.type === 'file') return e.mode | 0o600;
  return e.mode;
}

function tarHeader(p: string, e: Entry, fixPerms?: boolean): tar.Header {
  return {
    name: p,
    type: e.type,
    mode: fixMode(e, fixPerms),
    uid: e.uid,
    gid: e.gid,
    uname: e.uname,
    gname: e.gname,
    mtime: e.mtime,
    size: e.type === 'file' ? e.size : 0,
    linkname: e.linkname,
    devmajor: e.devmajor,
    devminor: e.devminor,
    pax: e.xattrs,
  } as tar.Header;
}

function once(pack: tar.Pack, h: tar.Header, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(h, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
}

/** Sniffs the first bytes of a stream for the ELF header while it flows on. */
function sniffHead(body: Readable, n: number, onHead: (b: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let got = 0;
  const onData = (c: Buffer) => {
    chunks.push(c);
    got += c.length;
    if (got >= n) {
      body.off('data', onData);
      onHead(Buffer.concat(chunks).subarray(0, n));
    }
  };
  body.on('data', onData);
}

/**
 * Emits the flattened tree as one tar stream: first every entry without
 * data (directories, symlinks, devices) and our own small files, parents
 * before children, so `mksquashfs -tar` (first occurrence wins) never
 * invents a directory; then regular files, streamed in layer order, each
 * inode once with its other names as hard links.
 */
async function emit(archive: DockerArchive, tree: FlatTree, pack: tar.Pack, opts: NativeOptions, shInode: Inode | undefined, onElf: (b: Buffer) => void): Promise<{ files: number; bytes: number }> {
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
    await eachMember(archive, layer, async (h, seq, body) => {
      const slot = wanted.get(seq);
      if (!slot) return drain(body);
      const { inode, names } = slot;
      if (inode === shInode) sniffHead(body, 20, onElf);
      const entry = pack.entry(tarHeader(names[0], inode.entry, opts.fixPerms));
      await pipeline(body, entry);
      bytes += inode.entry.size;
      for (const other of names.slice(1)) await once(pack, { ...tarHeader(other, inode.entry), type: 'link', linkname: names[0], size: 0 });
      files += names.length;
    }, opts.signal);
  }
  pack.finalize();
  return { files, bytes };
}

/**
 * The root is always 0755 root:root, as the engine shows `/` in a
 * container: a `./` member from a rootfs tarball often carries the 0700 of
 * the temp directory it was made in, which would lock users out.
 */
function runMksquashfs(bin: string, out: string, offset: bigint, mtime: Date, squash: { compression: Compression; mem: string }, signal?: AbortSignal): { stdin: NodeJS.WritableStream; done: Promise<void>; peakMiB: () => number } {
  const secs = String(Math.max(0, Math.floor(mtime.getTime() / 1000)));
  const args = ['-', out, '-tar', '-noappend', '-no-strip', '-comp', squash.compression, '-mem', squash.mem, '-quiet', '-no-progress', '-offset', offset.toString(),
    '-root-mode', '755', '-root-uid', '0', '-root-gid', '0', '-root-time', secs, '-mkfs-time', secs];
  const child = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'], signal, killSignal: 'SIGKILL' });
  // VmHWM is the high-water mark, so the last sample before exit is the peak.
  let peak = 0;
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      /* not started yet, exited, or no /proc */
    }
  };
  // Often at first, so a short run is sampled too; then every half second.
  let timer: NodeJS.Timeout | undefined;
  const tick = (ms: number) => {
    timer = setTimeout(() => {
      sample();
      tick(Math.min(ms * 2, 500));
    }, ms);
  };
  child.on('spawn', () => {
    sample();
    tick(10);
  });
  child.stdin.on('finish', sample);
  child.on('exit', () => clearTimeout(timer));
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  // A closed pipe is reported by the exit status below, not as a crash.
  child.stdin.on('error', () => undefined);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => {
      if (signal?.aborted) reject(signal.reason);
      else if (errnoCode(e) === 'ENOENT') reject(new OperationError('no-mksquashfs', `${bin} is not installed`, { hint: 'install squashfs-tools (apt-get install squashfs-tools)' }));
      else reject(e);
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else {
        const last = stderr.trim().split('\n').filter(Boolean).slice(-2).join('; ');
        reject(new OperationError('mksquashfs-failed', `mksquashfs failed (exit ${code}): ${last || 'no message'}`));
      }
    });
  });
  return { stdin: child.stdin, done, peakMiB: () => peak };
}

/** Converts an opened docker archive into `out` (a SIF), natively. */
export async function convertNative(archive: DockerArchive, out: string, opts: NativeOptions): Promise<ConvertResult> {
  const tree = new FlatTree();
  for (let layer = 0; layer < archive.layerCount; layer++) {
    throwIfAborted(opts.signal);
    await eachMember(archive, layer, async (h, seq, body) => {
      tree.apply(layer, seq, h);
      await drain(body);
    }, opts.signal);
  }
  const cfg = archive.config;
  const buildDate = opts.deterministic ? new Date(cfg.created ?? 0) : new Date();
  // The arch is the one of /bin/sh's ELF header, read as it streams past.
  const sh = tree.resolve('bin/sh');
  const shInode = sh?.kind === 'file' ? sh.inode : undefined;
  const configArch = cfg.architecture && cfg.architecture in Arch ? cfg.architecture : 'unknown';
  const deffile = definitionFile(opts.source);
  const env = envScript(cfg.config?.Env ?? []);
  const run = runscript(cfg.config ?? {});
  // labels.json goes into the partition before the ELF is seen: take the
  // config's word for it there, and check it against the ELF below.
  const labels = imageLabels({ config: cfg, imageId: archive.imageId, arch: configArch, buildDate, extra: opts.extraLabels });
  addSingularityTree(tree, { env, run, labels, deffile }, buildDate);
  const meta = Buffer.from(JSON.stringify(inspectMetadata(deffile, labels, env, run)));
  const ociConfig = Buffer.from(JSON.stringify(cfg.config ?? {}));
  const data = [
    { dataType: DataType.deffile, name: '', data: Buffer.from(deffile) },
    { dataType: DataType.genericJson, name: 'inspect-metadata.json', data: meta },
    { dataType: DataType.genericJson, name: 'oci-config.json', data: ociConfig },
  ];
  const offset = partitionOffsetAfter(data.map((d) => d.data.length));
  const tmp = tempNameFor(out);
  let elf: string | undefined;
  try {
    const compression = opts.compression ?? 'gzip';
    const squash = runMksquashfs(opts.mksquashfs ?? 'mksquashfs', tmp, offset, buildDate, { compression, mem: opts.mem ?? DEFAULT_MKSQUASHFS_MEM }, opts.signal);
    const pack = tar.pack();
    const packed = pipeline(pack as unknown as Readable, squash.stdin, { signal: opts.signal }).catch((e) => {
      if (opts.signal?.aborted) throw opts.signal.reason;
      // EPIPE: mksquashfs stopped reading; its own error says why.
      if (errnoCode(e) !== 'EPIPE') throw e;
    });
    let counts: { files: number; bytes: number };
    try {
      counts = await emit(archive, tree, pack, opts, shInode, (head) => {
        elf = elfArch(head);
      });
    } catch (e) {
      pack.destroy(e as Error);
      // When mksquashfs died (disk full, say), its message is the one that explains.
      const [, squashed] = await Promise.allSettled([packed, squash.done]);
      if (squashed.status === 'rejected' && !opts.signal?.aborted) throw squashed.reason;
      throw e;
    }
    await Promise.all([packed, squash.done]);
    const arch = elf ?? configArch;
    const sif = await finishSifInPlace(tmp, out, data, { name: '', partition: { fsType: FsType.squash, partType: PartType.primSys, arch: Arch[arch as keyof typeof Arch] ?? Arch.unknown } }, { deterministic: opts.deterministic });
    const partition = sif.descriptors[sif.descriptors.length - 1];
    return { sif, imageId: archive.imageId, arch, labels, files: counts.files, bytes: counts.bytes, partitionSize: Number(partition.size), compression, mksquashfsPeakMiB: Math.round(squash.peakMiB()) };
  } catch (e) {
    await fs.rm(tmp, { force: true });
    if (errnoCode(e) === 'ENOSPC') throw new OperationError('disk-full', `no space left while writing ${out}; nothing was published`);
    throw e;
  }
}
