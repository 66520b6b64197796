/**
 * SIF v1 layout (reference: sif-and-conversion.md §1). Pure: encodes and
 * decodes the global header and descriptors; all integers little-endian.
 */
export const HEADER_SIZE = 128;
export const DESCRIPTOR_SIZE = 585;
export const DEFAULT_DESCRIPTORS = 48;
export const DESCRIPTORS_OFFSET = 4096;
export const PARTITION_ALIGN = 4096;
export const LAUNCH_SCRIPT = '#!/usr/bin/env run-singularity\n';
/** Go's zero time, which a deterministic SIF stores. */
export const ZERO_TIME = -62135596800n;
export const GROUP_MASK = 0xf0000000;

export const DataType = {
  deffile: 0x4001,
  envvar: 0x4002,
  labels: 0x4003,
  partition: 0x4004,
  signature: 0x4005,
  genericJson: 0x4006,
  generic: 0x4007,
  cryptoMessage: 0x4008,
  sbom: 0x4009,
} as const;

export const FsType = { squash: 1, ext3: 2, immuObj: 3, raw: 4, encryptedSquash: 5 } as const;
export const PartType = { system: 1, primSys: 2, data: 3, overlay: 4 } as const;
export const Arch = {
  unknown: '00',
  '386': '01',
  amd64: '02',
  arm: '03',
  arm64: '04',
  ppc64: '05',
  ppc64le: '06',
  mips: '07',
  mipsle: '08',
  mips64: '09',
  mips64le: '10',
  s390x: '11',
  riscv64: '12',
} as const;

/** The architecture's name for a SIF header's code (`02` → `amd64`), as siftool prints it; the code itself when unknown. */
export function archName(code: string): string {
  return Object.entries(Arch).find(([, c]) => c === code)?.[0] ?? code;
}

export interface Header {
  launch: string;
  version: string;
  arch: string;
  uuid: Buffer;
  created: bigint;
  modified: bigint;
  descriptorsFree: bigint;
  descriptorsTotal: bigint;
  descriptorsOffset: bigint;
  descriptorsSize: bigint;
  dataOffset: bigint;
  dataSize: bigint;
}

export interface PartitionExtra {
  fsType: number;
  partType: number;
  arch: string;
}

export interface Descriptor {
  dataType: number;
  used: boolean;
  id: number;
  groupId: number;
  linkedId: number;
  offset: bigint;
  size: bigint;
  sizeWithPadding: bigint;
  created: bigint;
  modified: bigint;
  name: string;
  extra: Buffer;
  partition?: PartitionExtra;
}

function putString(buf: Buffer, at: number, len: number, s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new RangeError(`"${s}" does not fit in ${len} bytes`);
  b.copy(buf, at);
}

function getString(buf: Buffer, at: number, len: number): string {
  const slice = buf.subarray(at, at + len);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

export function encodeHeader(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  putString(b, 0x00, 32, h.launch);
  putString(b, 0x20, 10, 'SIF_MAGIC');
  putString(b, 0x2a, 3, h.version);
  putString(b, 0x2d, 3, h.arch);
  h.uuid.copy(b, 0x30, 0, 16);
  b.writeBigInt64LE(h.created, 0x40);
  b.writeBigInt64LE(h.modified, 0x48);
  b.writeBigInt64LE(h.descriptorsFree, 0x50);
  b.writeBigInt64LE(h.descriptorsTotal, 0x58);
  b.writeBigInt64LE(h.descriptorsOffset, 0x60);
  b.writeBigInt64LE(h.descriptorsSize, 0x68);
  b.writeBigInt64LE(h.dataOffset, 0x70);
  b.writeBigInt64LE(h.dataSize, 0x78);
  return b;
}

export function decodeHeader(b: Buffer): Header {
  return {
    launch: getString(b, 0x00, 32),
    version: getString(b, 0x2a, 3),
    arch: getString(b, 0x2d, 3),
    uuid: Buffer.from(b.subarray(0x30, 0x40)),
    created: b.readBigInt64LE(0x40),
    modified: b.readBigInt64LE(0x48),
    descriptorsFree: b.readBigInt64LE(0x50),
    descriptorsTotal: b.readBigInt64LE(0x58),
    descriptorsOffset: b.readBigInt64LE(0x60),
    descriptorsSize: b.readBigInt64LE(0x68),
    dataOffset: b.readBigInt64LE(0x70),
    dataSize: b.readBigInt64LE(0x78),
  };
}

export function hasMagic(b: Buffer): boolean {
  return b.length >= HEADER_SIZE && getString(b, 0x20, 10) === 'SIF_MAGIC';
}

export function encodePartitionExtra(p: PartitionExtra): Buffer {
  const e = Buffer.alloc(384);
  e.writeInt32LE(p.fsType, 0);
  e.writeInt32LE(p.partType, 4);
  putString(e, 8, 3, p.arch);
  return e;
}

export function encodeDescriptor(d: Descriptor): Buffer {
  const b = Buffer.alloc(DESCRIPTOR_SIZE);
  if (!d.used) return b;
  b.writeInt32LE(d.dataType, 0);
  b.writeUInt8(1, 4);
  b.writeUInt32LE(d.id, 5);
  b.writeUInt32LE(d.groupId, 9);
  b.writeUInt32LE(d.linkedId, 13);
  b.writeBigInt64LE(d.offset, 17);
  b.writeBigInt64LE(d.size, 25);
  b.writeBigInt64LE(d.sizeWithPadding, 33);
  b.writeBigInt64LE(d.created, 41);
  b.writeBigInt64LE(d.modified, 49);
  // uid and gid (57, 65) are deprecated and stay zero.
  putString(b, 73, 128, d.name);
  (d.partition ? encodePartitionExtra(d.partition) : d.extra).copy(b, 201, 0, 384);
  return b;
}

export function decodeDescriptor(b: Buffer): Descriptor {
  const dataType = b.readInt32LE(0);
  const extra = Buffer.from(b.subarray(201, 201 + 384));
  return {
    dataType,
    used: b.readUInt8(4) !== 0,
    id: b.readUInt32LE(5),
    groupId: b.readUInt32LE(9),
    linkedId: b.readUInt32LE(13),
    offset: b.readBigInt64LE(17),
    size: b.readBigInt64LE(25),
    sizeWithPadding: b.readBigInt64LE(33),
    created: b.readBigInt64LE(41),
    modified: b.readBigInt64LE(49),
    name: getString(b, 73, 128),
    extra,
    partition:
      dataType === DataType.partition
        ? { fsType: extra.readInt32LE(0), partType: extra.readInt32LE(4), arch: getString(extra, 8, 3) }
        : undefined,
  };
}
