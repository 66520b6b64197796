/**
 * What a SIF says about itself, read from its header and small objects
 * only: never the partition, never a mount. Used by `inspect` and by the
 * container tree, which must read thousands of these quickly.
 */
import * as fsSync from 'node:fs';
import type { z } from 'zod';
import { InputError, errnoCode, isSifkitError } from '../errors';
import { openRegularSync } from '../util/files';
import { escapeForMessage } from '../validate/names';
import { parseDocument } from '../validate/schema';
import { ociConfigSchema, type OciConfig } from '../validate/schemas/docker';
import { provenanceDocSchema, type ProvenanceDoc } from '../validate/schemas/provenance';
import { inspectMetadataSchema, labelsSchema, sbomSchema, type SbomDoc } from '../validate/schemas/sif';
import { DataType, PartType, type Descriptor } from './format';
import { SIF_PREFETCH, objectLabel, parseSifHead, sifHeadLength } from './file';

export interface SifSummary {
  file: string;
  size: number;
  arch: string;
  uuid: string;
  created: number;
  objects: Array<{ id: number; type: string; name: string; offset: number; size: number; group: number }>;
  deffile?: string;
  labels: Record<string, string>;
  environment: Record<string, string>;
  runscript?: string;
  ociConfig?: OciConfig;
  partition?: {
    offset: number;
    size: number;
    fsType: number;
    arch: string;
    squashfsMagic: boolean;
    compression?: string;
  };
  /** The SBOM object (CycloneDX JSON), summarised: what it lists; `document` is the whole SBOM, when asked for. */
  sbom?: {
    format: string;
    components: Array<{ name: string; version?: string; purl?: string }>;
    document?: SbomDoc;
  };
  /** The provenance object (provenance.json), checked against sifkit's strict provenance schema. */
  provenance?: ProvenanceDoc;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k]));

/** Small objects only: anything bigger is not metadata. */
const MAX_OBJECT = 16 << 20;

/** squashfs compressor ids (squashfs_fs.h). */
const SQUASHFS_COMPRESSORS: Record<number, string> = { 1: 'gzip', 2: 'lzma', 3: 'lzo', 4: 'xz', 5: 'lz4', 6: 'zstd' };

function uuidText(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Reads a SIF's metadata. Synchronous reads on purpose: a few small reads
 * per file, and status reads thousands of files; the thread pool's
 * round trips cost more than the reads.
 */
const prefetch = Buffer.alloc(SIF_PREFETCH);

/** `sbomDocument`: keep the whole SBOM in the summary (what `inspect --json` shows). */
export function inspectSifSync(file: string, opts: { sbomDocument?: boolean } = {}): SifSummary {
  let fd: number;
  try {
    fd = openRegularSync(file, 'SIF');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError('unreadable-sif', `cannot open ${file}: ${errnoCode(e) ?? (e as Error).message}`);
  }
  try {
    const size = BigInt(fsSync.fstatSync(fd).size);
    // One buffer for every call (reads are synchronous): nothing below keeps a slice of it.
    let pre = prefetch.subarray(0, fsSync.readSync(fd, prefetch, 0, prefetch.length, 0));
    const need = sifHeadLength(pre, size, file);
    if (need > pre.length) {
      pre = Buffer.alloc(need);
      fsSync.readSync(fd, pre, 0, need, 0);
    }
    const sif = parseSifHead(pre, size, file);
    const readObject = (d: Descriptor): Buffer => {
      if (d.size > BigInt(MAX_OBJECT))
        throw new InputError('bad-sif', `object ${d.id} (${d.name}) is ${d.size} bytes, too big to be metadata`);
      const end = Number(d.offset + d.size);
      if (end <= pre.length) return pre.subarray(Number(d.offset), end);
      const buf = Buffer.alloc(Number(d.size));
      fsSync.readSync(fd, buf, 0, buf.length, Number(d.offset));
      return buf;
    };
    const summary: SifSummary = {
      file,
      size: Number(sif.fileSize),
      arch: sif.header.arch,
      uuid: uuidText(sif.header.uuid),
      created: Number(sif.header.created),
      objects: sif.descriptors.map((d) => ({
        id: d.id,
        type: TYPE_NAMES[d.dataType] ?? `0x${d.dataType.toString(16)}`,
        name: d.name,
        offset: Number(d.offset),
        size: Number(d.size),
        group: d.groupId & 0x0fffffff,
      })),
      labels: {},
      environment: {},
    };
    refuseSecondOfARole(sif.descriptors, file);
    for (const d of sif.descriptors) {
      if (d.dataType === DataType.deffile) summary.deffile = readObject(d).toString('utf8');
      else if (d.dataType === DataType.labels)
        Object.assign(summary.labels, parse(labelsSchema, readObject(d), file, d));
      else if (d.dataType === DataType.genericJson && d.name === 'inspect-metadata.json') {
        const attrs = parse(inspectMetadataSchema, readObject(d), file, d).data?.attributes ?? {};
        Object.assign(summary.labels, attrs.labels ?? {});
        Object.assign(summary.environment, attrs.environment ?? {});
        summary.runscript = attrs.runscript ?? undefined;
      } else if (d.dataType === DataType.genericJson && d.name === 'oci-config.json')
        summary.ociConfig = parse(ociConfigSchema, readObject(d), file, d);
      else if (d.dataType === DataType.sbom) {
        const doc = parse(sbomSchema, readObject(d), file, d);
        summary.sbom = {
          format: d.extra.readInt32LE(0) === 1 ? 'CycloneDX JSON' : `format ${d.extra.readInt32LE(0)}`,
          components: (doc.components ?? []).map((c) => ({ name: c.name, version: c.version, purl: c.purl })),
          // The tree reads thousands of SIFs: only `inspect` keeps the whole document.
          document: opts.sbomDocument ? doc : undefined,
        };
      } else if (d.dataType === DataType.genericJson && d.name === 'provenance.json')
        summary.provenance = parse(provenanceDocSchema, readObject(d), file, d);
      else if (d.partition?.partType === PartType.primSys) {
        // The squashfs superblock: magic, then the compressor id at byte 20.
        const head = Buffer.alloc(22);
        const got = fsSync.readSync(fd, head, 0, head.length, Number(d.offset));
        const squashfsMagic = got >= 4 && head.toString('latin1', 0, 4) === 'hsqs';
        const compression =
          squashfsMagic && got === head.length
            ? (SQUASHFS_COMPRESSORS[head.readUInt16LE(20)] ?? `unknown (${head.readUInt16LE(20)})`)
            : undefined;
        summary.partition = {
          offset: Number(d.offset),
          size: Number(d.size),
          fsType: d.partition.fsType,
          arch: d.partition.arch,
          squashfsMagic,
          compression,
        };
      }
    }
    return summary;
  } finally {
    fsSync.closeSync(fd);
  }
}

export async function inspectSif(file: string, opts: { sbomDocument?: boolean } = {}): Promise<SifSummary> {
  return inspectSifSync(file, opts);
}

/** What a reader takes an object for, when it takes one: the objects a SIF may carry only once. */
function roleOf(d: Descriptor): string | undefined {
  if (d.dataType === DataType.deffile) return 'definition';
  if (d.dataType === DataType.labels) return 'labels object';
  if (d.dataType === DataType.sbom) return 'SBOM';
  if (d.dataType === DataType.genericJson && ROLE_NAMES.has(d.name)) return d.name;
  return undefined;
}
const ROLE_NAMES = new Set(['inspect-metadata.json', 'oci-config.json', 'provenance.json']);

/**
 * Two objects of one role (two SBOMs, two provenance documents) would make
 * the answer depend on which one a reader happens to take: refused, naming
 * both, whichever group each is in.
 */
function refuseSecondOfARole(descriptors: Descriptor[], file: string): void {
  const first = new Map<string, Descriptor>();
  for (const d of [...descriptors].sort((a, b) => a.id - b.id)) {
    const role = roleOf(d);
    if (!role) continue;
    const had = first.get(role);
    if (had)
      throw new InputError(
        'bad-sif',
        `${file}: ${objectLabel(d)} is a second ${role} (${objectLabel(had)} is one): which one holds is unknown`,
      );
    first.set(role, d);
  }
}

/** A JSON object of the SIF, checked against its schema; errors name the object. */
function parse<S extends z.ZodType>(schema: S, buf: Buffer, file: string, d: Descriptor): z.output<S> {
  const what = `${file}: object ${d.id} ${escapeForMessage(d.name || TYPE_NAMES[d.dataType], 64)}`;
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new InputError('bad-sif', `${what} is not valid JSON`);
  }
  return parseDocument(schema, doc, what, 'bad-sif');
}
