/**
 * Reading and writing SIF files. The reader checks everything and turns
 * corruption into an InputError; the writer streams partition data from a
 * file and renames it into place under the final name only when complete.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { InputError, errnoCode, isSifkitError } from '../errors';
import { fsyncPath, openRegular, renameIntoPlace, tempNameFor } from '../util/files';
import { escapeForMessage } from '../validate/names';
import {
  DEFAULT_DESCRIPTORS,
  DESCRIPTORS_OFFSET,
  DESCRIPTOR_SIZE,
  DataType,
  GROUP_MASK,
  HEADER_SIZE,
  LAUNCH_SCRIPT,
  PARTITION_ALIGN,
  PartType,
  ZERO_TIME,
  decodeDescriptor,
  decodeHeader,
  encodeDescriptor,
  encodeHeader,
  hasMagic,
  type Descriptor,
  type Header,
  type PartitionExtra,
} from './format';

export interface SifImage {
  header: Header;
  descriptors: Descriptor[];
  fileSize: bigint;
}

/** Reads and validates header and descriptors (never the data objects). */
export async function readSif(file: string): Promise<SifImage> {
  let fh;
  try {
    fh = await openRegular(file, 'SIF');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError('unreadable-sif', `cannot open ${file}: ${errnoCode(e) ?? (e as Error).message}`);
  }
  try {
    return await readSifFrom(fh, file);
  } finally {
    await fh.close();
  }
}

/** How much of the file's start `parseSifHead` needs; checks the header on the way. */
export function sifHeadLength(head: Buffer, size: bigint, file: string): number {
  const fail = (m: string): never => {
    throw new InputError('bad-sif', `${file}: not a valid SIF: ${m}`);
  };
  // Not a SIF at all is a different answer from a SIF whose structure is broken (cut short, edited):
  // a signature check refuses the second as tampered (signature.ts), and takes the first as bad input.
  if (head.length < HEADER_SIZE || !hasMagic(head))
    throw new InputError('not-sif', `${file}: not a valid SIF: no SIF_MAGIC`);
  const header = decodeHeader(head);
  if (header.version !== '01') fail(`version ${JSON.stringify(header.version)} is not 01`);
  const total = header.descriptorsTotal;
  if (total < 1n || total > 100000n) fail(`descriptor count ${total} is out of range`);
  if (header.descriptorsSize !== total * BigInt(DESCRIPTOR_SIZE)) fail('descriptor size does not match the count');
  if (header.descriptorsOffset < BigInt(HEADER_SIZE) || header.descriptorsOffset + header.descriptorsSize > size)
    fail('descriptors lie outside the file');
  // The data starts after the table: else an object could lie over the descriptors or the header.
  if (header.dataOffset < header.descriptorsOffset + header.descriptorsSize)
    fail('the data section starts inside the descriptor table');
  return Number(header.descriptorsOffset + header.descriptorsSize);
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k]));

/** `object 7 (signature)`, `object 5 "sbom.cdx.json"`: the name is the file's data, so it is quoted and escaped. */
export function objectLabel(d: Descriptor): string {
  return d.name
    ? `object ${d.id} ${escapeForMessage(d.name, 64)}`
    : `object ${d.id} (${TYPE_NAMES[d.dataType] ?? `type 0x${d.dataType.toString(16)}`})`;
}

/** Validates header and descriptors from the file's first bytes (pure). */
export function parseSifHead(buf: Buffer, size: bigint, file: string): SifImage {
  const fail = (m: string): never => {
    throw new InputError('bad-sif', `${file}: not a valid SIF: ${m}`);
  };
  const need = sifHeadLength(buf, size, file);
  if (buf.length < need) fail('truncated descriptor table');
  const header = decodeHeader(buf.subarray(0, HEADER_SIZE));
  const total = Number(header.descriptorsTotal);
  const start = Number(header.descriptorsOffset);
  const descriptors: Descriptor[] = [];
  for (let i = 0; i < total; i++) {
    const d = decodeDescriptor(buf.subarray(start + i * DESCRIPTOR_SIZE, start + (i + 1) * DESCRIPTOR_SIZE));
    if (d.used) descriptors.push(d);
  }
  if (BigInt(descriptors.length) + header.descriptorsFree !== header.descriptorsTotal)
    fail('free descriptor count does not match');
  // Objects are known by ID (links, groups and signatures name them so): two with one ID are two answers.
  const ids = new Set<number>();
  for (const d of descriptors) {
    if (d.id === 0 || ids.has(d.id))
      fail(`${objectLabel(d)}: ${d.id === 0 ? 'ID 0 is not an object ID' : 'its ID is taken twice'}`);
    ids.add(d.id);
  }
  const spans = descriptors
    .map((d) => {
      if (d.offset < header.dataOffset || d.size < 0n || d.offset + d.size > size)
        fail(`${objectLabel(d)} lies outside the file`);
      return [d.offset, d.offset + d.size, d.id] as const;
    })
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  for (let i = 1; i < spans.length; i++)
    if (spans[i][0] < spans[i - 1][1]) fail(`objects ${spans[i - 1][2]} and ${spans[i][2]} overlap`);
  const prim = descriptors.filter((d) => d.partition?.partType === PartType.primSys);
  if (prim.length > 1) fail('more than one primary system partition');
  return { header, descriptors, fileSize: size };
}

/** The bytes a reader usually needs in one go: header, descriptors, small objects. */
export const SIF_PREFETCH = 40 << 10;

/** As readSif, on a file already open. */
export async function readSifFrom(fh: fs.FileHandle, file: string): Promise<SifImage> {
  const size = BigInt((await fh.stat()).size);
  let buf = Buffer.alloc(SIF_PREFETCH);
  buf = buf.subarray(0, (await fh.read(buf, 0, buf.length, 0)).bytesRead);
  const need = sifHeadLength(buf, size, file);
  if (need > buf.length) {
    const more = Buffer.alloc(need);
    await fh.read(more, 0, need, 0);
    buf = more;
  }
  return parseSifHead(buf, size, file);
}

export type SifInput =
  | { kind: 'data'; dataType: number; name: string; data: Buffer }
  | { kind: 'partition'; name: string; file: string; partition: PartitionExtra };

/** An object's place in the layout: partitions need only their size. */
export type LayoutItem =
  | { kind: 'data'; dataType: number; name: string; size: number }
  | { kind: 'partition'; name: string; size: number; partition: PartitionExtra };

export interface WriteOptions {
  /** Nil UUID and Go's zero time: the same inputs give the same bytes. */
  deterministic?: boolean;
  now?: Date;
  /** The header's UUID (convert derives it from the image ID), instead of a random or nil one. */
  uuid?: Buffer;
  /** The time every header and descriptor field gets (convert: the image's creation), instead of the clock. */
  time?: Date;
  /**
   * Partitions first in the file, data objects after them (the descriptor
   * table keeps the items' order): a partition written before the objects
   * are known (conversion during the image's read) starts at a fixed place.
   */
  partitionFirst?: boolean;
}

export interface SifLayout {
  header: Header;
  descriptors: Descriptor[];
  fileSize: bigint;
}

const DATA_OFFSET = BigInt(DESCRIPTORS_OFFSET + DEFAULT_DESCRIPTORS * DESCRIPTOR_SIZE);

function alignUp(n: bigint): bigint {
  const a = BigInt(PARTITION_ALIGN);
  return ((n + a - 1n) / a) * a;
}

/**
 * Where every object goes, as apptainer lays them out: all in group 1,
 * data objects back to back, partitions aligned to 4096. Pure.
 */
export function layoutSif(items: LayoutItem[], opts: WriteOptions = {}): SifLayout {
  const time = opts.time
    ? BigInt(Math.max(0, Math.floor(opts.time.getTime() / 1000)))
    : opts.deterministic
      ? ZERO_TIME
      : BigInt(Math.floor((opts.now ?? new Date()).getTime() / 1000));
  let cursor = DATA_OFFSET;
  const descriptors: Descriptor[] = [];
  const placed = opts.partitionFirst
    ? [...items.entries()].sort(([, a], [, b]) => (a.kind === b.kind ? 0 : a.kind === 'partition' ? -1 : 1))
    : [...items.entries()];
  for (const [i, item] of placed) {
    const size = BigInt(item.size);
    const offset = item.kind === 'partition' ? alignUp(cursor) : cursor;
    descriptors[i] = {
      dataType: item.kind === 'data' ? item.dataType : DataType.partition,
      used: true,
      id: i + 1,
      groupId: (1 | GROUP_MASK) >>> 0,
      linkedId: 0,
      offset,
      size,
      sizeWithPadding: offset - cursor + size,
      created: time,
      modified: time,
      name: item.name,
      extra: Buffer.alloc(384),
      partition: item.kind === 'partition' ? item.partition : undefined,
    };
    cursor = offset + size;
  }
  const prim = descriptors.find((d) => d.partition?.partType === PartType.primSys);
  const header: Header = {
    launch: LAUNCH_SCRIPT,
    version: '01',
    arch: prim?.partition?.arch ?? '00',
    uuid: opts.uuid ?? (opts.deterministic ? Buffer.alloc(16) : Buffer.from(randomUUID().replace(/-/g, ''), 'hex')),
    created: time,
    modified: time,
    descriptorsFree: BigInt(DEFAULT_DESCRIPTORS - descriptors.length),
    descriptorsTotal: BigInt(DEFAULT_DESCRIPTORS),
    descriptorsOffset: BigInt(DESCRIPTORS_OFFSET),
    descriptorsSize: BigInt(DEFAULT_DESCRIPTORS * DESCRIPTOR_SIZE),
    dataOffset: DATA_OFFSET,
    dataSize: cursor - DATA_OFFSET,
  };
  return { header, descriptors, fileSize: cursor };
}

/** The offset a partition gets when it follows these data objects. */
export function partitionOffsetAfter(dataSizes: number[]): bigint {
  return alignUp(DATA_OFFSET + BigInt(dataSizes.reduce((a, b) => a + b, 0)));
}

/** Where a partition laid out first (`partitionFirst`) starts. */
export const FIRST_PARTITION_OFFSET = alignUp(DATA_OFFSET);

/** Writes header, descriptor table and data objects into an open file. */
async function writeHead(fh: fs.FileHandle, layout: SifLayout, data: Array<Buffer | undefined>): Promise<void> {
  await fh.write(encodeHeader(layout.header), 0, HEADER_SIZE, 0);
  const table = Buffer.alloc(DEFAULT_DESCRIPTORS * DESCRIPTOR_SIZE);
  layout.descriptors.forEach((d, i) => encodeDescriptor(d).copy(table, i * DESCRIPTOR_SIZE));
  await fh.write(table, 0, table.length, DESCRIPTORS_OFFSET);
  for (const [i, buf] of data.entries())
    if (buf) await fh.write(buf, 0, buf.length, Number(layout.descriptors[i].offset));
}

async function syncIntoPlace(tmp: string, out: string): Promise<void> {
  await fsyncPath(tmp);
  await renameIntoPlace(tmp, out);
}

/**
 * Writes a SIF, streaming partitions from their files. The output appears
 * under its name only complete (temp name in the same directory, fsync,
 * rename).
 */
export async function writeSif(out: string, inputs: SifInput[], opts: WriteOptions = {}): Promise<SifImage> {
  const items: LayoutItem[] = [];
  for (const input of inputs) {
    if (input.kind === 'data')
      items.push({ kind: 'data', dataType: input.dataType, name: input.name, size: input.data.length });
    else
      items.push({
        kind: 'partition',
        name: input.name,
        partition: input.partition,
        size: (await fs.stat(input.file)).size,
      });
  }
  const layout = layoutSif(items, opts);
  const tmp = tempNameFor(out);
  try {
    const fh = await fs.open(tmp, 'wx', 0o644);
    try {
      await writeHead(
        fh,
        layout,
        inputs.map((i) => (i.kind === 'data' ? i.data : undefined)),
      );
      // Alignment gaps must read as zeros: size the file first.
      await fh.truncate(Number(layout.fileSize));
    } finally {
      await fh.close();
    }
    for (const [i, input] of inputs.entries()) {
      if (input.kind !== 'partition') continue;
      await pipeline(
        createReadStream(input.file, { highWaterMark: 1 << 20 }),
        createWriteStream(tmp, { flags: 'r+', start: Number(layout.descriptors[i].offset) }),
      );
    }
    await syncIntoPlace(tmp, out);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  return layout;
}

/**
 * Completes a SIF whose single partition (the last item) was already
 * written at its offset into `tmp` (mksquashfs -offset does that, saving a
 * copy of the whole image), then renames it into place as `out`.
 */
export async function finishSifInPlace(
  tmp: string,
  out: string,
  data: Array<{ dataType: number; name: string; data: Buffer }>,
  partition: { name: string; partition: PartitionExtra },
  opts: WriteOptions = {},
): Promise<SifImage> {
  const expected = partitionOffsetAfter(data.map((d) => d.data.length));
  const size = BigInt((await fs.stat(tmp)).size) - expected;
  if (size <= 0n) throw new InputError('bad-partition', `${tmp}: no partition data after offset ${expected}`);
  const layout = layoutSif(
    [
      ...data.map((d) => ({ kind: 'data' as const, dataType: d.dataType, name: d.name, size: d.data.length })),
      { kind: 'partition', name: partition.name, partition: partition.partition, size: Number(size) },
    ],
    opts,
  );
  return publishWithHead(tmp, out, layout, data);
}

/**
 * Finishes a SIF whose one partition, `partitionSize` bytes, was written
 * first at FIRST_PARTITION_OFFSET of `tmp`: the data objects go after it,
 * then header and descriptors, and `out` is published.
 */
export async function finishSifAroundPartition(
  tmp: string,
  out: string,
  data: Array<{ dataType: number; name: string; data: Buffer }>,
  partition: { name: string; partition: PartitionExtra; size: number },
  opts: WriteOptions = {},
): Promise<SifImage> {
  const layout = layoutSif(
    [
      ...data.map((d) => ({ kind: 'data' as const, dataType: d.dataType, name: d.name, size: d.data.length })),
      { kind: 'partition', name: partition.name, partition: partition.partition, size: partition.size },
    ],
    { ...opts, partitionFirst: true },
  );
  return publishWithHead(tmp, out, layout, data, { truncate: true });
}

/**
 * Writes header, descriptors and data objects into `tmp` (cut to the
 * layout's size when asked: its tail was written before its size was
 * known) and publishes it as `out`.
 */
async function publishWithHead(
  tmp: string,
  out: string,
  layout: SifLayout,
  data: Array<{ data: Buffer }>,
  opts: { truncate?: boolean } = {},
): Promise<SifImage> {
  const fh = await fs.open(tmp, 'r+');
  try {
    if (opts.truncate) await fh.truncate(Number(layout.fileSize));
    await writeHead(
      fh,
      layout,
      data.map((d) => d.data),
    );
  } finally {
    await fh.close();
  }
  await syncIntoPlace(tmp, out);
  return layout;
}
