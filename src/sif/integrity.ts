/**
 * The SIF integrity format of sylabs/sif `pkg/integrity` (read in its Go
 * source: metadata.go, digest.go, sign.go, select.go; pkg/sif descriptor.go
 * GetIntegrityReader, sif.go header GetIntegrityReader). Pure: raw header and
 * descriptor bytes in, the signed metadata document and the signature
 * object's descriptor out. Reading and writing the file is sign-file.ts.
 */
import { createHash } from 'node:crypto';
import { DESCRIPTOR_SIZE, DataType, GROUP_MASK, HEADER_SIZE, decodeDescriptor, type Descriptor } from './format';

/** DSSE payload type of the metadata (dsse.go metadataMediaType). */
export const METADATA_MEDIA_TYPE = 'application/vnd.sylabs.sif-metadata+json';

/** Digest names as Go writes them (digest.go supportedDigestAlgorithms) → node's names. */
const DIGEST_ALGORITHMS: Record<string, string> = {
  sha224: 'sha224',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sha512_224: 'sha512-224',
  sha512_256: 'sha512-256',
};
const DIGEST_SIZES: Record<string, number> = {
  sha224: 28,
  sha256: 32,
  sha384: 48,
  sha512: 64,
  sha512_224: 28,
  sha512_256: 32,
};

/** The signature descriptor's hash type (pkg/sif hashType, 1-based). */
export const SIGNATURE_HASH_TYPES: Record<number, string> = { 1: 'sha256', 2: 'sha384', 3: 'sha512' };

export type DigestName = keyof typeof DIGEST_SIZES;

export function nodeDigestName(name: string): string {
  const n = DIGEST_ALGORITHMS[name];
  if (!n) throw new RangeError(`unsupported digest ${name}`);
  return n;
}

/**
 * The header fields a signature covers: launch script, magic, version and
 * UUID (not the arch, times, counts or offsets, which adding an object changes).
 */
export function headerIntegrityBytes(rawHeader: Buffer): Buffer {
  if (rawHeader.length < HEADER_SIZE) throw new RangeError('short SIF header');
  return Buffer.concat([rawHeader.subarray(0, 0x2d), rawHeader.subarray(0x30, 0x40)]);
}

/**
 * A descriptor's covered fields, as Go's binary.Write lays them out: data
 * type, used (as 0/1), the ID relative to its group's lowest, link, size,
 * creation time, UID, GID, then name and extra. Offset, padding, group and
 * modification time are left out so later objects do not break a signature.
 */
export function descriptorIntegrityBytes(rawDescriptor: Buffer, relativeId: number): Buffer {
  if (rawDescriptor.length < DESCRIPTOR_SIZE) throw new RangeError('short SIF descriptor');
  const fixed = Buffer.alloc(4 + 1 + 4 + 4 + 8 + 8 + 8 + 8);
  rawDescriptor.copy(fixed, 0, 0, 4);
  fixed.writeUInt8(rawDescriptor.readUInt8(4) !== 0 ? 1 : 0, 4);
  fixed.writeUInt32LE(relativeId >>> 0, 5);
  rawDescriptor.copy(fixed, 9, 13, 17); // link
  rawDescriptor.copy(fixed, 13, 25, 33); // size
  rawDescriptor.copy(fixed, 21, 41, 49); // created
  rawDescriptor.copy(fixed, 29, 57, 73); // uid, gid
  return Buffer.concat([fixed, rawDescriptor.subarray(73, DESCRIPTOR_SIZE)]);
}

export function digestOf(name: DigestName, data: Buffer): string {
  return `${name}:${createHash(nodeDigestName(name)).update(data).digest('hex')}`;
}

export interface ObjectMetadata {
  relativeId: number;
  descriptorDigest: string;
  objectDigest: string;
}

/** The signed document (metadata.go imageMetadata, version 1). */
export interface ImageMetadata {
  version: 1;
  header: { digest: string };
  objects: ObjectMetadata[];
}

/** The exact bytes Go's json.Marshal gives: fields in declaration order, no spaces. */
export function encodeMetadata(m: ImageMetadata): Buffer {
  const doc = {
    version: m.version,
    header: { digest: m.header.digest },
    objects: m.objects.map((o) => ({
      relativeId: o.relativeId,
      descriptorDigest: o.descriptorDigest,
      objectDigest: o.objectDigest,
    })),
  };
  return Buffer.from(JSON.stringify(doc), 'utf8');
}

const DIGEST_RE = /^(sha224|sha256|sha384|sha512|sha512_224|sha512_256):([0-9a-f]+)$/;

function checkDigest(v: unknown, where: string): string {
  const m = typeof v === 'string' ? DIGEST_RE.exec(v) : null;
  if (!m || m[2].length !== DIGEST_SIZES[m[1]] * 2) throw new Error(`${where} is not a digest`);
  return v as string;
}

/** Parses a signed payload; throws a one-line Error naming what is wrong. */
export function parseMetadata(payload: Buffer): ImageMetadata {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new Error('the signed metadata is not JSON');
  }
  const d = doc as { version?: unknown; header?: { digest?: unknown }; objects?: unknown };
  if (typeof doc !== 'object' || doc === null || d.version !== 1)
    throw new Error('the signed metadata is not version 1');
  const header = { digest: checkDigest(d.header?.digest, 'header digest') };
  if (!Array.isArray(d.objects) || d.objects.length === 0) throw new Error('the signed metadata lists no objects');
  const objects = d.objects.map(
    (o: { relativeId?: unknown; descriptorDigest?: unknown; objectDigest?: unknown }, i: number) => {
      if (
        typeof o !== 'object' ||
        o === null ||
        !Number.isInteger(o.relativeId) ||
        (o.relativeId as number) < 0 ||
        (o.relativeId as number) > 0xffffffff
      )
        throw new Error(`signed object ${i} has no relative ID`);
      return {
        relativeId: o.relativeId as number,
        descriptorDigest: checkDigest(o.descriptorDigest, `object ${i} descriptor digest`),
        objectDigest: checkDigest(o.objectDigest, `object ${i} digest`),
      };
    },
  );
  return { version: 1, header, objects };
}

/** A descriptor with its raw bytes and its table slot. */
export interface RawDescriptor {
  slot: number;
  raw: Buffer;
  d: Descriptor;
}

/** Every descriptor slot of a SIF head buffer (used or not). */
export function rawDescriptors(head: Buffer, descriptorsOffset: number, total: number): RawDescriptor[] {
  const out: RawDescriptor[] = [];
  for (let slot = 0; slot < total; slot++) {
    const raw = head.subarray(
      descriptorsOffset + slot * DESCRIPTOR_SIZE,
      descriptorsOffset + (slot + 1) * DESCRIPTOR_SIZE,
    );
    out.push({ slot, raw, d: decodeDescriptor(raw) });
  }
  return out;
}

export const groupOf = (d: Descriptor): number => (d.groupId & ~GROUP_MASK) >>> 0;

/** The objects of a group, by ID (what a group signature covers: select.go getGroupObjects). */
export function groupObjects(all: RawDescriptor[], group: number): RawDescriptor[] {
  return all.filter((r) => r.d.used && groupOf(r.d) === group).sort((a, b) => a.d.id - b.d.id);
}

/** The groups that have objects, ascending. */
export function groupIds(all: RawDescriptor[]): number[] {
  return [...new Set(all.filter((r) => r.d.used && groupOf(r.d) !== 0).map((r) => groupOf(r.d)))].sort((a, b) => a - b);
}

/** The signature objects linked to a group (link = group | 0xf0000000). */
export function groupSignatures(all: RawDescriptor[], group: number): RawDescriptor[] {
  return all.filter(
    (r) => r.d.used && r.d.dataType === DataType.signature && r.d.linkedId >>> 0 === (group | GROUP_MASK) >>> 0,
  );
}

/** The metadata a signature over `objects` carries, from their digests. */
export function imageMetadata(
  headerDigest: string,
  objects: Array<{ r: RawDescriptor; objectDigest: string }>,
  digest: DigestName = 'sha256',
): ImageMetadata {
  const minId = Math.min(...objects.map((o) => o.r.d.id));
  return {
    version: 1,
    header: { digest: headerDigest },
    objects: objects.map((o) => ({
      relativeId: o.r.d.id - minId,
      descriptorDigest: digestOf(digest, descriptorIntegrityBytes(o.r.raw, o.r.d.id - minId)),
      objectDigest: o.objectDigest,
    })),
  };
}

/** The signature descriptor's extra: hash type (int32), then a 20-byte PGP fingerprint or zeros. */
export function signatureExtra(hash: 'sha256' | 'sha384' | 'sha512', fingerprint?: Buffer): Buffer {
  const e = Buffer.alloc(384);
  const code = Number(Object.entries(SIGNATURE_HASH_TYPES).find(([, n]) => n === hash)![0]);
  e.writeInt32LE(code, 0);
  if (fingerprint) fingerprint.copy(e, 4, 0, Math.min(fingerprint.length, 256));
  return e;
}

export function decodeSignatureExtra(extra: Buffer): { hash?: string; fingerprint?: Buffer } {
  const hash = SIGNATURE_HASH_TYPES[extra.readInt32LE(0)];
  const fp = extra.subarray(4, 24);
  return { hash, fingerprint: fp.every((b) => b === 0) ? undefined : Buffer.from(fp) };
}

/** What the signed metadata says against what the file has now: one line per difference, naming it. */
export function compareMetadata(
  signed: ImageMetadata,
  now: ImageMetadata,
  names: Map<number, string>,
  minId: number,
): string[] {
  const out: string[] = [];
  if (signed.header.digest !== now.header.digest)
    out.push('the SIF header (launch script, magic, version or UUID) changed');
  const nowBy = new Map(now.objects.map((o) => [o.relativeId, o]));
  const signedIds = new Set(signed.objects.map((o) => o.relativeId));
  const label = (rel: number) => `object ${minId + rel}${names.get(minId + rel) ? ` (${names.get(minId + rel)})` : ''}`;
  for (const o of signed.objects) {
    const n = nowBy.get(o.relativeId);
    if (!n) out.push(`${label(o.relativeId)} is signed but missing from the group`);
    else {
      if (o.descriptorDigest !== n.descriptorDigest) out.push(`the descriptor of ${label(o.relativeId)} changed`);
      if (o.objectDigest !== n.objectDigest) out.push(`the data of ${label(o.relativeId)} changed`);
    }
  }
  for (const n of now.objects)
    if (!signedIds.has(n.relativeId)) out.push(`${label(n.relativeId)} is in the group but not signed`);
  return out;
}

/** The digest algorithms a signed document uses (so one pass over the file computes them all). */
export function digestNamesOf(m: ImageMetadata): DigestName[] {
  const names = new Set<string>(
    [m.header.digest, ...m.objects.flatMap((o) => [o.descriptorDigest, o.objectDigest])].map((d) => d.split(':')[0]),
  );
  return [...names] as DigestName[];
}

/** An object to append to a SIF: what its descriptor says besides its place. */
export interface AppendedObject {
  dataType: number;
  /** Group number (0: none, stored as the bare group flag, as sylabs does). */
  group: number;
  /** The raw link field (a group link carries the group flag). */
  linkedId: number;
  name: string;
  extra: Buffer;
  size: number;
}

/**
 * Where appended objects go (create.go writeDataObject): each in the next
 * free slot, ID = slot + 1, right after the end of the last object, no
 * alignment (only partitions are aligned). Pure: the new descriptors.
 */
export function planAppend(
  all: RawDescriptor[],
  dataOffset: bigint,
  items: AppendedObject[],
  time: bigint,
): Array<{ slot: number; descriptor: Descriptor }> {
  const free = all.filter((r) => !r.d.used);
  if (free.length < items.length) throw new Error(`no free descriptor slot for ${items.length} more object(s)`);
  let end = dataOffset;
  for (const r of all) if (r.d.used && r.d.offset + r.d.size > end) end = r.d.offset + r.d.size;
  return items.map((item, i) => {
    const descriptor: Descriptor = {
      dataType: item.dataType,
      used: true,
      id: free[i].slot + 1,
      groupId: (item.group | GROUP_MASK) >>> 0,
      linkedId: item.linkedId >>> 0,
      offset: end,
      size: BigInt(item.size),
      sizeWithPadding: BigInt(item.size),
      created: time,
      modified: time,
      name: item.name,
      extra: item.extra,
    };
    end += BigInt(item.size);
    return { slot: free[i].slot, descriptor };
  });
}

/** A signature over `group`: no group of its own, linked to the group. */
export function signatureObject(group: number, size: number, extra: Buffer): AppendedObject {
  return { dataType: DataType.signature, group: 0, linkedId: (group | GROUP_MASK) >>> 0, name: '', extra, size };
}
