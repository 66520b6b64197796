/**
 * A SIF opened to read its head once, and to append objects to it in
 * place: data first (past the current end), then header and descriptor
 * table in one write, so an interrupted run leaves the old file (with
 * unreferenced bytes past its end, which a rerun overwrites) or the new
 * one, never a table that names missing data. Used by signing, by the
 * SBOM and provenance objects, and by verify-conversion.
 */
import { promises as fs } from 'node:fs';
import { InputError, RefusedError, errnoCode, isSifkitError } from '../errors';
import { openRegular } from '../util/files';
import { escapeForMessage } from '../validate/names';
import { DESCRIPTOR_SIZE, encodeDescriptor } from './format';
import { SIF_PREFETCH, parseSifHead, sifHeadLength, type SifImage } from './file';
import { planAppend, rawDescriptors, type AppendedObject, type RawDescriptor } from './integrity';

export interface OpenSif {
  fh: fs.FileHandle;
  file: string;
  /** Header and descriptor table, as read. */
  head: Buffer;
  sif: SifImage;
  all: RawDescriptor[];
}

export async function openSif(file: string, write: boolean): Promise<OpenSif> {
  let fh: fs.FileHandle;
  try {
    if (write) {
      const st = await fs.stat(file);
      if (!st.isFile()) throw new InputError('not-regular', `${escapeForMessage(file)} is not a regular file`);
      fh = await fs.open(file, 'r+');
    } else fh = await openRegular(file, 'SIF');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError(
      'unreadable-sif',
      `cannot open ${escapeForMessage(file)}: ${errnoCode(e) ?? (e as Error).message}`,
    );
  }
  try {
    const size = BigInt((await fh.stat()).size);
    let head = Buffer.alloc(SIF_PREFETCH);
    head = head.subarray(0, (await fh.read(head, 0, head.length, 0)).bytesRead);
    const need = sifHeadLength(head, size, file);
    if (need > head.length) {
      head = Buffer.alloc(need);
      await fh.read(head, 0, need, 0);
    }
    head = Buffer.from(head.subarray(0, need));
    const sif = parseSifHead(head, size, file);
    return {
      fh,
      file,
      head,
      sif,
      all: rawDescriptors(head, Number(sif.header.descriptorsOffset), Number(sif.header.descriptorsTotal)),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Reads one object whole; only for small ones (signatures, JSON). */
export async function readObject(o: OpenSif, r: RawDescriptor, max: number): Promise<Buffer> {
  if (r.d.size > BigInt(max))
    throw new InputError(
      'bad-sif',
      `${escapeForMessage(o.file)}: object ${r.d.id} is ${r.d.size} bytes, more than the ${max} its kind may have`,
    );
  const b = Buffer.alloc(Number(r.d.size));
  await o.fh.read(b, 0, b.length, Number(r.d.offset));
  return b;
}

/**
 * Appends objects to a SIF opened for writing. Their times, and the
 * header's modification time, are `time` (callers pass the SIF's own, so a
 * reproducible SIF stays reproducible). Gives the new objects' IDs.
 */
export async function appendObjects(
  o: OpenSif,
  items: Array<AppendedObject & { data: Buffer }>,
  time: bigint,
): Promise<number[]> {
  let plan;
  try {
    plan = planAppend(o.all, o.sif.header.dataOffset, items, time);
  } catch (e) {
    throw new RefusedError('sif-full', `${escapeForMessage(o.file)}: ${(e as Error).message}`);
  }
  for (const [i, p] of plan.entries())
    await o.fh.write(items[i].data, 0, items[i].data.length, Number(p.descriptor.offset));
  await o.fh.sync();
  const last = plan[plan.length - 1].descriptor;
  const end = last.offset + last.size;
  const head = Buffer.from(o.head);
  for (const p of plan)
    encodeDescriptor(p.descriptor).copy(head, Number(o.sif.header.descriptorsOffset) + p.slot * DESCRIPTOR_SIZE);
  head.writeBigInt64LE(time, 0x48);
  head.writeBigInt64LE(o.sif.header.descriptorsFree - BigInt(items.length), 0x50);
  head.writeBigInt64LE(end - o.sif.header.dataOffset, 0x78);
  // Header and table in one write: a reader sees the old or the new table, never half of one.
  await o.fh.write(head, 0, head.length, 0);
  if (BigInt((await o.fh.stat()).size) > end) await o.fh.truncate(Number(end));
  await o.fh.sync();
  return plan.map((p) => p.descriptor.id);
}

/**
 * Copies the objects of `from` that `to` lacks (by ID: those added after
 * conversion, such as the SBOM, provenance and signatures) onto the end of
 * `to`, byte for byte with their descriptors' fields, so a fresh conversion
 * can be compared with a signed SIF (verify-conversion).
 */
export async function copyAddedObjects(from: string, to: string): Promise<number> {
  const src = await openSif(from, false);
  try {
    const dst = await openSif(to, true);
    try {
      const have = new Set(dst.all.filter((r) => r.d.used).map((r) => r.d.id));
      const added = src.all.filter((r) => r.d.used && !have.has(r.d.id)).sort((a, b) => a.d.id - b.d.id);
      if (added.length === 0) return 0;
      const items = [];
      for (const r of added) {
        items.push({
          dataType: r.d.dataType,
          group: (r.d.groupId & 0x0fffffff) >>> 0,
          linkedId: r.d.linkedId,
          name: r.d.name,
          extra: r.d.extra,
          size: Number(r.d.size),
          data: await readObject(src, r, 16 << 20),
        });
      }
      await appendObjects(dst, items, src.sif.header.modified);
      return added.length;
    } finally {
      await dst.fh.close();
    }
  } finally {
    await src.fh.close();
  }
}
