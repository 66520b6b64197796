/**
 * What makes two conversions of one image byte-identical, and the check
 * that a SIF is the conversion of an image: no value comes from the clock
 * or a random source. Times are the image's creation; the UUID is derived
 * from the image ID, sifkit's version and the options that shape the
 * bytes; entries go to mksquashfs in a fixed order (the engine's export
 * walks names in lexical order, the flattener in layer order), and
 * mksquashfs 4.5 writes the same filesystem for the same input and
 * -mkfs-time.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';

/** The image's creation time, or the epoch for an image without one: never the clock. */
export function imageTime(created: string | undefined): Date {
  const t = created ? Date.parse(created) : NaN;
  return Number.isFinite(t) && t >= 0 ? new Date(t) : new Date(0);
}

/** Options that change the SIF's bytes, in a fixed key order. */
export interface ShapingOptions {
  compression: string;
  fixPerms: boolean;
}

/**
 * A version-8 (RFC 9562, custom) UUID from sha256 over the image ID,
 * sifkit's version and the shaping options: the same conversion gets the
 * same UUID, a different one (other image, version or options) another.
 */
export function sifUuid(imageId: string, sifkitVersion: string, opts: ShapingOptions): Buffer {
  const h = createHash('sha256')
    .update(`sifkit-sif-uuid\0${imageId}\0${sifkitVersion}\0${opts.compression}\0${opts.fixPerms ? 1 : 0}`)
    .digest();
  const u = Buffer.from(h.subarray(0, 16));
  u[6] = (u[6] & 0x0f) | 0x80;
  u[8] = (u[8] & 0x3f) | 0x80;
  return u;
}

export interface Comparison {
  identical: boolean;
  size: [number, number];
  /** Bytes that differ (counted over the common length), and where the first one is. */
  differing: number;
  firstDifference?: number;
}

/** Compares two files byte for byte, a MiB at a time from each (memory stays at two buffers). */
export async function compareFiles(a: string, b: string): Promise<Comparison> {
  const [fa, fb] = [await fs.open(a, 'r'), await fs.open(b, 'r')];
  try {
    const size: [number, number] = [(await fa.stat()).size, (await fb.stat()).size];
    const common = Math.min(...size);
    const bufA = Buffer.alloc(1 << 20);
    const bufB = Buffer.alloc(1 << 20);
    let differing = 0;
    let first: number | undefined;
    for (let pos = 0; pos < common; pos += bufA.length) {
      const n = Math.min(bufA.length, common - pos);
      await fa.read(bufA, 0, n, pos);
      await fb.read(bufB, 0, n, pos);
      if (bufA.subarray(0, n).equals(bufB.subarray(0, n))) continue;
      for (let i = 0; i < n; i++) {
        if (bufA[i] !== bufB[i]) {
          differing++;
          first ??= pos + i;
        }
      }
    }
    if (first === undefined && size[0] !== size[1]) first = common;
    return { identical: differing === 0 && size[0] === size[1], size, differing, firstDifference: first };
  } finally {
    await fa.close();
    await fb.close();
  }
}
