/**
 * Reading and writing SIF files. The reader checks everything and turns
 * corruption into an InputError; the writer streams partition data from a
 * file and publishes under the final name only when complete.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { InputError, errnoCode } from '../errors';
import { fsyncDir, tempNameFor } from '../util/files';
import * as path from 'node:path';
import {
  DEFAULT_DESCRIPTORS, DESCRIPTORS_OFFSET, DESCRIPTOR_SIZE, DataType, GROUP_MASK, HEADER_SIZE, LAUNCH_SCRIPT, PARTITION_ALIGN, PartType, ZERO_TIME,
  decodeDescriptor, decodeHeader, encodeDescriptor, encodeHeader, hasMagic, type Descriptor, type Header, type PartitionExtra,
} from './format';

export interface SifImage {
  header: Header;
  descriptors: Descriptor[];
  fileSize: bigint;
}

/** Reads and validates header and descriptors (never the data objects). */
export async function readSif(file: string): Promise<SifImage> {
  const fail = (m: string): never => {
    throw new InputError('bad-sif', `${file}: not a valid SIF: ${m}`);
  };
  let fh;
  try {
    fh = await fs.open(file, 'r');
  } catch (e) {
    throw new InputError('unreadable-sif', `cannot open ${file}: ${errnoCode(e) ?? (e as Error).message}`);
  }
  try {
    const size = BigInt((await fh.stat()).size);
    const head = Buffer.alloc(HEADER_SIZE);
    const { bytesRead } = await fh.read(head, 0, HEADER_SIZE, 0);
    if (bytesRead < HEADER_SIZE || !hasMagic(head)) fail('no SIF_MAGIC');
    const header = decodeHeader(head);
    if (header.version !== '01') fail(`version ${JSON.stringify(header.version)} is not 01`);
    const total = header.descriptorsTotal;
    if (total < 1n || total > 100000n) fail(`descriptor count ${total} is out of range`);
    if (header.descriptorsSize !== total * BigInt(DESCRIPTOR_SIZE)) fail('descriptor size does not match the count');
    if (header.descriptorsOffset < BigInt(HEADER_SIZE) || header.descriptorsOffset + header.descriptorsSize > size) fail('descriptors lie outside the file');
    const raw = Buffer.alloc(Number(header.descriptorsSize));
    await fh.read(raw, 0, raw.length, Number(header.descriptorsOffset));
    const descriptors: Descriptor[] = [];
    for (let i = 0; i < Number(total); i++) {
      const d = decodeDescriptor(raw.subarray(i * DESCRIPTOR_SIZE, (i + 1) * DESCRIPTOR_SIZE));
      if (d.used) descriptors.push(d);
    }
    if (BigInt(descriptors.length) + header.descriptorsFree !== total) fail('free descriptor count does not match');
    const spans = descriptors.map((d) => {
      if (d.offset < header.dataOffset || d.size < 0n || d.offset + d.size > size) fail(`object ${d.id} (${d.name}) lies outside the file`);
      return [d.offset, d.offset + d.size, d.id] as const;
    }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (let i = 1; i < spans.length; i++) if (spans[i][0] < spans[i - 1][1]) fail(`objects ${spans[i - 1][2]} and ${spans[i][2]} overlap`);
    const prim = descriptors.filter((d) => d.partition?.partType === PartType.primSys);
    if (prim.length > 1) fail('more than one primary system partition');
    return { header, descriptors, fileSize: size };
  } finally {
    await fh.close();
  }
}

export type SifInput =
  | { kind: 'data'; dataType: number; name: string; data: Buffer }
  | { kind: 'partition'; name: string; file: string; partition: PartitionExtra };

export interface WriteOptions {
  /** Nil UUID and Go's zero time: the same inputs give the same bytes. */
  deterministic?: boolean;
  now?: Date;
}

/**
 * Writes a SIF with all objects in group 1, like apptainer: data objects
 * back to back, partitions aligned to 4096. The output appears under its
 * name only complete (temp name in the same directory, fsync, rename).
 */
export async function writeSif(out: string, inputs: SifInput[], opts: WriteOptions = {}): Promise<SifImage> {
  const time = opts.deterministic ? ZERO_TIME : BigInt(Math.floor((opts.now ?? new Date()).getTime() / 1000));
  const dataOffset = BigInt(DESCRIPTORS_OFFSET + DEFAULT_DESCRIPTORS * DESCRIPTOR_SIZE);
  let cursor = dataOffset;
  const descriptors: Descriptor[] = [];
  for (const [i, input] of inputs.entries()) {
    const size = input.kind === 'data' ? BigInt(input.data.length) : BigInt((await fs.stat(input.file)).size);
    let offset = cursor;
    if (input.kind === 'partition') offset = ((cursor + BigInt(PARTITION_ALIGN - 1)) / BigInt(PARTITION_ALIGN)) * BigInt(PARTITION_ALIGN);
    descriptors.push({
      dataType: input.kind === 'data' ? input.dataType : DataType.partition,
      used: true,
      id: i + 1,
      groupId: (1 | GROUP_MASK) >>> 0,
      linkedId: 0,
      offset,
      size,
      sizeWithPadding: offset - cursor + size,
      created: time,
      modified: time,
      name: input.name,
      extra: Buffer.alloc(384),
      partition: input.kind === 'partition' ? input.partition : undefined,
    });
    cursor = offset + size;
  }
  const prim = descriptors.find((d) => d.partition?.partType === PartType.primSys);
  const header: Header = {
    launch: LAUNCH_SCRIPT,
    version: '01',
    arch: prim?.partition?.arch ?? '00',
    uuid: opts.deterministic ? Buffer.alloc(16) : Buffer.from(randomUUID().replace(/-/g, ''), 'hex'),
    created: time,
    modified: time,
    descriptorsFree: BigInt(DEFAULT_DESCRIPTORS - descriptors.length),
    descriptorsTotal: BigInt(DEFAULT_DESCRIPTORS),
    descriptorsOffset: BigInt(DESCRIPTORS_OFFSET),
    descriptorsSize: BigInt(DEFAULT_DESCRIPTORS * DESCRIPTOR_SIZE),
    dataOffset,
    dataSize: cursor - dataOffset,
  };
  const tmp = tempNameFor(out);
  try {
    const fh = await fs.open(tmp, 'wx', 0o644);
    try {
      await fh.write(encodeHeader(header), 0, HEADER_SIZE, 0);
      const table = Buffer.alloc(DEFAULT_DESCRIPTORS * DESCRIPTOR_SIZE);
      descriptors.forEach((d, i) => encodeDescriptor(d).copy(table, i * DESCRIPTOR_SIZE));
      await fh.write(table, 0, table.length, DESCRIPTORS_OFFSET);
      for (const [i, input] of inputs.entries()) {
        const d = descriptors[i];
        if (input.kind === 'data') await fh.write(input.data, 0, input.data.length, Number(d.offset));
      }
      // Alignment gaps must read as zeros: size the file first.
      await fh.truncate(Number(cursor));
    } finally {
      await fh.close();
    }
    for (const [i, input] of inputs.entries()) {
      if (input.kind !== 'partition') continue;
      await pipeline(createReadStream(input.file, { highWaterMark: 1 << 20 }), createWriteStream(tmp, { flags: 'r+', start: Number(descriptors[i].offset) }));
    }
    const sync = await fs.open(tmp, 'r+');
    await sync.sync();
    await sync.close();
    await fs.rename(tmp, out);
    await fsyncDir(path.dirname(out));
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  return { header, descriptors, fileSize: cursor };
}
