/**
 * The two fields every reader of a raw tar header needs: a numeric field
 * (octal, or GNU base-256 for sizes of 8 GiB and more) and the header's
 * checksum. One reading, shared by the archive index (convert/archive.ts)
 * and the check that an engine's image stream is whole (util/tar-end.ts).
 */

/** A tar header block's size. */
export const TAR_BLOCK = 512;

/** The numeric field at [start, start + len) of header `h`. */
export function tarNumber(h: Buffer, start: number, len: number): number {
  if (h[start] & 0x80) {
    let n = 0;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + h[i];
    return n;
  }
  const s = h
    .toString('latin1', start, start + len)
    .replace(/\0.*$/s, '')
    .trim();
  return s ? parseInt(s, 8) : 0;
}

/** Whether header block `h` (512 bytes) carries its own checksum: the field counted as spaces. */
export function tarChecksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === tarNumber(h, 148, 8);
}
