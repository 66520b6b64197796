/**
 * The part both converters share: the SIF objects made from the image
 * config, and the run of `mksquashfs -tar` that writes the partition
 * straight into the SIF at its final offset from a tar stream we feed it.
 * The SIF appears under its name only when complete.
 */
import { promises as fs } from 'node:fs';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as tar from 'tar-stream';
import { OperationError, errnoCode, isSifkitError } from '../errors';
import { DataType, FsType, PartType, Arch, type PartitionExtra } from '../sif/format';
import { finishSifInPlace, partitionOffsetAfter, type SifImage } from '../sif/file';
import { removeDeadTemps, tempNameFor } from '../util/files';
import { runMksquashfs } from './mksquashfs-run';
import type { Processes } from '../util/processes';
import { singularityAdditions, type Addition } from './additions';
import type { ImageConfig } from './archive';
import type { Entry } from './flatten';
import { definitionFile, envScript, imageLabels, inspectMetadata, runscript, type SourceRef } from './singularity';
import { DEFAULT_MKSQUASHFS_MEM, type Compression } from './squash-options';
import { imageTime, sifUuid } from './reproducible';
import { quietPack } from './squash-tar';
import { coalesce } from '../util/coalesce';
import { sifkitVersion } from '../provenance';

export interface SquashOptions {
  fixPerms?: boolean;
  /** Kept for callers that still say so: every conversion is reproducible now. */
  deterministic?: boolean;
  /** Labels added to labels.json and the inspect metadata (e.g. where it came from). */
  extraLabels?: Record<string, string>;
  signal?: AbortSignal;
  mksquashfs?: string;
  /** Where mksquashfs runs (default: this host's programs). */
  processes?: Processes;
  /** Squashfs compressor (default gzip, as apptainer). */
  compression?: Compression;
  /** mksquashfs -mem (default DEFAULT_MKSQUASHFS_MEM). */
  mem?: string;
  /** mksquashfs -processors: a Slurm task's CPUs, not the node's (default: mksquashfs's own, every online CPU). */
  processors?: number;
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
  /** Why one mksquashfs after the read made the partition, where a read of the layers tried first (during-read.ts). */
  twoPassesBecause?: string;
}

/** What the feeder reports once it has written its last entry. */
export interface Fed {
  files: number;
  bytes: number;
  /** The arch of an ELF seen in the image, when one was. */
  elfArch?: string;
}

/**
 * The OCI image config's `config` keys, the only ones apptainer keeps: a
 * docker-built image also carries the container's Hostname, AttachStdin
 * and so on, and the engine's inspect shows yet others.
 */
const OCI_CONFIG_KEYS = [
  'User',
  'ExposedPorts',
  'Env',
  'Entrypoint',
  'Cmd',
  'Volumes',
  'WorkingDir',
  'Labels',
  'StopSignal',
  'ArgsEscaped',
] as const;

export function ociConfig(config: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of OCI_CONFIG_KEYS) {
    const v = config?.[k];
    if (v !== undefined && v !== null && v !== '' && !(typeof v === 'object' && Object.keys(v).length === 0))
      out[k] = v;
  }
  return out;
}

export interface Prepared {
  buildDate: Date;
  configArch: string;
  labels: Record<string, string>;
  additions: Addition[];
  objects: { dataType: number; name: string; data: Buffer }[];
}

/** The SIF objects and apptainer's additions for an image, from its config alone. */
export function prepareImage(cfg: ImageConfig, imageId: string, source: SourceRef, opts: SquashOptions): Prepared {
  // Never the clock: two conversions of one image give the same bytes.
  const buildDate = imageTime(cfg.created);
  const configArch = cfg.architecture && cfg.architecture in Arch ? cfg.architecture : 'unknown';
  const deffile = definitionFile(source);
  const env = envScript(cfg.config?.Env ?? []);
  const run = runscript(cfg.config ?? {});
  // labels.json goes into the partition before any ELF is seen: take the
  // config's word for it there; the partition descriptor gets the ELF's.
  const labels = imageLabels({ config: cfg, imageId, arch: configArch, buildDate, extra: opts.extraLabels });
  const objects = [
    { dataType: DataType.deffile, name: '', data: Buffer.from(deffile) },
    {
      dataType: DataType.genericJson,
      name: 'inspect-metadata.json',
      data: Buffer.from(JSON.stringify(inspectMetadata(deffile, labels, env, run))),
    },
    {
      dataType: DataType.genericJson,
      name: 'oci-config.json',
      data: Buffer.from(JSON.stringify(ociConfig(cfg.config))),
    },
  ];
  return {
    buildDate,
    configArch,
    labels,
    additions: singularityAdditions({ env, run, labels, deffile }, buildDate),
    objects,
  };
}

export function fixMode(e: Entry, fixPerms?: boolean): number {
  if (!fixPerms) return e.mode;
  if (e.type === 'directory') return e.mode | 0o700;
  if (e.type === 'file') return e.mode | 0o600;
  return e.mode;
}

/** The file-type bits of st_mode, by tar entry type. */
const S_IFMT_OF: Record<string, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

/**
 * Largest id tar-stream writes in a ustar header: six octal digits (it
 * writes 0o777777 for anything bigger), so beyond it the id goes in a pax
 * record. (At seven digits, the field's size, owners 262144 to 2097151
 * came out as 262143.)
 */
const USTAR_MAX_ID = 0o777777;

/**
 * Numeric owners only: `mksquashfs -tar` looks user and group names up in
 * the build host's /etc/passwd and /etc/group, so a name would give the
 * host's id for it, not the image's.
 *
 * The mode carries its file-type bits: tar-stream's packer replaces a
 * falsy mode (0, a file nobody may read) by 0644/0755, and it writes only
 * the low 12 bits, so with the type bits set a mode of 000 stays 000.
 */
export function tarHeader(p: string, e: Entry, fixPerms?: boolean): tar.Header {
  const pax: Record<string, string> = { ...(e.xattrs ?? {}) };
  if (e.uid > USTAR_MAX_ID) pax.uid = String(e.uid);
  if (e.gid > USTAR_MAX_ID) pax.gid = String(e.gid);
  return {
    name: p,
    type: e.type,
    mode: (S_IFMT_OF[e.type] ?? 0) | fixMode(e, fixPerms),
    uid: Math.min(e.uid, USTAR_MAX_ID),
    gid: Math.min(e.gid, USTAR_MAX_ID),
    mtime: e.mtime,
    size: e.type === 'file' ? e.size : 0,
    linkname: e.linkname,
    devmajor: e.devmajor,
    devminor: e.devminor,
    pax: Object.keys(pax).length ? pax : undefined,
  } as tar.Header;
}

export function once(pack: tar.Pack, h: tar.Header, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) =>
    pack.entry(h, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())),
  );
}

/** Sniffs the first bytes of a stream for the ELF header while it flows on. */
export function sniffHead(body: Readable, n: number, onHead: (b: Buffer) => void): void {
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

/** The image's own partition: squashfs, the primary system one, of `arch` (a Go arch name). */
export function systemPartition(arch: string): PartitionExtra {
  return { fsType: FsType.squash, partType: PartType.primSys, arch: Arch[arch as keyof typeof Arch] ?? Arch.unknown };
}

/**
 * Runs mksquashfs on what `feed` packs, writing the partition in place
 * after the objects, then finishes the SIF header and publishes `out`.
 */
export function squashToSif(
  out: string,
  imageId: string,
  prep: Prepared,
  opts: SquashOptions,
  feed: (pack: tar.Pack) => Promise<Fed>,
): Promise<ConvertResult> {
  return squashTarToSif(out, imageId, prep, opts, () => {
    const pack = quietPack();
    return {
      // In big chunks (coalesce.ts): tar-stream gives each header and each body piece of the engine's
      // stream to mksquashfs's stdin as a write of its own; 1 MiB writes cut node's CPU by a tenth.
      streams: [pack as unknown as Readable, coalesce()],
      fed: feed(pack).then((f) => {
        pack.finalize();
        return f;
      }),
      stop: (e) => pack.destroy(e),
    };
  });
}

/** A tar on its way to mksquashfs: the streams it goes through, and what was in it once all was handed on. */
export interface TarFeed {
  streams: [Readable, ...Transform[]];
  fed: Promise<Fed>;
  /** Stops the feed when `fed` failed (the streams are otherwise left to end). */
  stop?(e: Error): void;
}

/** squashToSif for a tar stream made elsewhere (the engine converter's edited export). */
export async function squashTarToSif(
  out: string,
  imageId: string,
  prep: Prepared,
  opts: SquashOptions,
  start: () => TarFeed,
): Promise<ConvertResult> {
  const offset = partitionOffsetAfter(prep.objects.map((d) => d.data.length));
  await removeDeadTemps(out);
  const tmp = tempNameFor(out);
  const compression = opts.compression ?? 'gzip';
  try {
    const squash = runMksquashfs(
      opts.mksquashfs ?? 'mksquashfs',
      tmp,
      offset,
      prep.buildDate,
      { compression, mem: opts.mem ?? DEFAULT_MKSQUASHFS_MEM, processors: opts.processors },
      opts.signal,
      opts.processes,
    );
    const feed = start();
    const packed = pipeline([...feed.streams, squash.stdin], { signal: opts.signal }).catch((e) => {
      if (opts.signal?.aborted) throw opts.signal.reason;
      // EPIPE: mksquashfs stopped reading; its own error says why.
      if (errnoCode(e) !== 'EPIPE') throw e;
    });
    // Both settle while the feed may still be running (Ctrl-C, mksquashfs
    // dying): marked as handled here, awaited below, so an early rejection
    // is never an unhandled one that kills the process.
    packed.catch(() => undefined);
    squash.done.catch(() => undefined);
    let fed: Fed;
    try {
      fed = await feed.fed;
    } catch (e) {
      feed.stop?.(e as Error);
      // When mksquashfs died (disk full, say), its message is the one that explains. Not when the feed
      // named its own cause (a stream cut short, a hostile member): mksquashfs then only stopped on the cut.
      const [, squashed] = await Promise.allSettled([packed, squash.done]);
      if (squashed.status === 'rejected' && !opts.signal?.aborted && !isSifkitError(e)) throw squashed.reason;
      throw e;
    }
    // mksquashfs's own failure explains a broken feed better than the feed's.
    const [fedOut, squashed] = await Promise.allSettled([packed, squash.done]);
    if (squashed.status === 'rejected') throw squashed.reason;
    if (fedOut.status === 'rejected') throw fedOut.reason;
    const arch = fed.elfArch ?? prep.configArch;
    const sif = await finishSifInPlace(
      tmp,
      out,
      prep.objects,
      { name: '', partition: systemPartition(arch) },
      {
        time: prep.buildDate,
        uuid: sifUuid(imageId, sifkitVersion(), { compression, fixPerms: Boolean(opts.fixPerms) }),
      },
    );
    const partition = sif.descriptors[sif.descriptors.length - 1];
    return {
      sif,
      imageId,
      arch,
      labels: prep.labels,
      files: fed.files,
      bytes: fed.bytes,
      partitionSize: Number(partition.size),
      compression,
      mksquashfsPeakMiB: Math.round(squash.peakMiB()),
    };
  } catch (e) {
    await fs.rm(tmp, { force: true });
    if (errnoCode(e) === 'ENOSPC')
      throw new OperationError('disk-full', `no space left while writing ${out}; nothing was published`);
    throw e;
  }
}
