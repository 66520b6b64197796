/**
 * The tar stream we feed `mksquashfs -tar`: tar-stream's pack, but for
 * the header blocks of a symlink, written here so that mksquashfs
 * (squashfs-tools 4.5.1, tar.c) keeps its target byte for byte.
 *
 * mksquashfs strips leading "/", "./" and "../" from member paths, and it
 * strips them from a pax `linkpath=` record too (read_pax_header calls
 * skip_components on both). tar-stream puts the target in `linkpath=`
 * whenever an entry needs a pax header at all (a long or non-ASCII name,
 * xattrs, a big owner), so `-> /etc/passwd` became `-> etc/passwd` and
 * `-> ../f` became `-> f`. What it leaves alone: the ustar linkname field
 * of a symlink (100 bytes) and a GNU long-link ('K') record, read with no
 * stripping. So a symlink's target goes in the linkname field when it fits
 * and in a 'K' record when it does not, never in pax; the name and the
 * other pax records still go in pax ('x'), as tar-stream would write them.
 * (GNU tar, format gnu, writes long targets the same way.)
 */

import * as tar from 'tar-stream';

const BLOCK = 512;
/** The ustar name and linkname fields' size. */
const FIELD = 100;
/** Where a pax path stands in for the name, the name field says this (as tar-stream writes it). */
const PAX_NAME = 'PaxHeader';
/** The name GNU tar gives its long-link record. */
const LONG_LINK_NAME = '././@LongLink';

export interface SymlinkHeader {
  name: string;
  linkname?: string;
  /** Permission bits (anything above 0o7777, such as the file-type bits, is dropped). */
  mode: number;
  /** At most 0o7777777; a bigger owner goes in `pax` (uid=, gid=) with the field capped. */
  uid: number;
  gid: number;
  mtime: Date;
  /** Pax records besides the path (xattrs, big owners). */
  pax?: Record<string, string>;
}

/** `n` as `width - 1` octal digits and a NUL, as ustar numeric fields are. */
function octal(n: number, width: number): string {
  const digits = Math.max(0, Math.floor(n)).toString(8);
  if (digits.length > width - 1) throw new Error(`tar header: ${n} does not fit ${width - 1} octal digits`);
  return `${digits.padStart(width - 1, '0')}\0`;
}

interface Fields {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: Buffer;
  devmajor?: number;
  devminor?: number;
}

/** One ustar header block. */
function headerBlock(f: Fields): Buffer {
  const b = Buffer.alloc(BLOCK);
  f.name.copy(b, 0, 0, FIELD);
  b.write(octal(f.mode, 8), 100, 'latin1');
  b.write(octal(f.uid, 8), 108, 'latin1');
  b.write(octal(f.gid, 8), 116, 'latin1');
  b.write(octal(f.size, 12), 124, 'latin1');
  b.write(octal(f.mtime, 12), 136, 'latin1');
  b.write(f.typeflag, 156, 'latin1');
  f.linkname?.copy(b, 157, 0, FIELD);
  b.write('ustar\x0000', 257, 'latin1');
  if (f.devmajor || f.devminor) {
    b.write(octal(f.devmajor ?? 0, 8), 329, 'latin1');
    b.write(octal(f.devminor ?? 0, 8), 337, 'latin1');
  }
  // The checksum is the sum of the block's bytes with its own field as spaces.
  b.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** Zeros up to the next block boundary. */
function padding(n: number): Buffer {
  return Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);
}

/** A record of a pax extended header: its length in bytes counts its own digits. */
export function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.from(` ${key}=${value}\n`);
  let len = body.length + String(body.length).length;
  if (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** An extension record (typeflag 'x' or 'K') and its data, padded. */
function extension(typeflag: string, name: string, data: Buffer, mtime: number): Buffer {
  const head = headerBlock({
    name: Buffer.from(name),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime,
    typeflag,
  });
  return Buffer.concat([head, data, padding(data.length)]);
}

/** Names that stand in the ustar name field as they are: short, and ASCII (pax's rule for a portable name). */
function fitsNameField(name: Buffer): boolean {
  return name.length <= FIELD && name.every((c) => c > 0 && c < 0x80);
}

/**
 * The blocks that stand before a symlink's (empty) data: a 'K' record
 * when its target is longer than the linkname field, a pax header when
 * its name does not fit the name field or it has other pax records, then
 * its ustar header.
 */
export function symlinkHeaderBlocks(h: SymlinkHeader): Buffer {
  const { name, linkname, mode, uid, gid, mtime, pax } = h;
  return headerBlocks({ name, linkname: linkname ?? '', mode, uid, gid, mtime, pax, type: 'symlink', size: 0 });
}

/** The ustar type flags of the entries sifkit writes. */
const TYPEFLAGS: Record<string, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
};

/** The biggest size the ustar field holds (11 octal digits); a bigger one goes in pax, as `size=`. */
const MAX_FIELD_SIZE = 0o77777777777;

/**
 * The blocks that stand before an entry's data, for any type: a pax
 * header when the name (or a hard link's target) does not fit its field,
 * the size is 8 GiB or more, or the entry has pax records (xattrs, big
 * owners), then the ustar header. A symlink's target never goes in pax
 * (mksquashfs would strip it, above): a longer one than the field goes in
 * a 'K' record first. What mksquashfs reads from them is what it reads
 * from tar-stream's pack (which splits a long name into the ustar prefix
 * instead, and cannot write a size of 8 GiB or more at all).
 */
export function headerBlocks(h: Partial<tar.Header> & { name: string }): Buffer {
  const type = h.type ?? 'file';
  const typeflag = TYPEFLAGS[type];
  if (!typeflag) throw new Error(`tar header: no type flag for a ${type}`);
  const { mode = 0, uid = 0, gid = 0 } = h;
  const secs = Math.max(0, Math.floor((h.mtime ?? new Date(0)).getTime() / 1000));
  const name = Buffer.from(h.name);
  const target = Buffer.from(h.linkname ?? '');
  const size = h.size ?? 0;
  const symlink = type === 'symlink';
  const inName = fitsNameField(name);
  const inLink = symlink || target.length === 0 || fitsNameField(target);
  const out: Buffer[] = [];
  // 'K' first: a pax `size=` read before it would make mksquashfs skip the 'K' record's own size.
  if (symlink && target.length > FIELD)
    out.push(extension('K', LONG_LINK_NAME, Buffer.concat([target, Buffer.alloc(1)]), secs));
  const records = [
    ...(inName ? [] : [paxRecord('path', h.name)]),
    ...(inLink ? [] : [paxRecord('linkpath', h.linkname ?? '')]),
    ...(size > MAX_FIELD_SIZE ? [paxRecord('size', String(size))] : []),
    ...Object.entries((h.pax as Record<string, string> | undefined) ?? {}).map(([k, v]) => paxRecord(k, v)),
  ];
  if (records.length) out.push(extension('x', PAX_NAME, Buffer.concat(records), secs));
  out.push(
    headerBlock({
      name: inName ? name : Buffer.from(PAX_NAME),
      mode: mode & 0o7777,
      uid,
      gid,
      size: size > MAX_FIELD_SIZE ? 0 : size,
      mtime: secs,
      typeflag,
      // A long symlink target's first 100 bytes, as GNU tar writes them: the 'K' record before it is what counts.
      linkname: inLink ? target.subarray(0, FIELD) : Buffer.from(PAX_NAME),
      devmajor: h.devmajor,
      devminor: h.devminor,
    }),
  );
  return Buffer.concat(out);
}

/** Zeros that bring `n` bytes of data to a whole block. */
export const dataPadding = padding;

/** tar-stream's Pack where it writes an entry's header blocks (not in its typings). */
interface HeaderWriter {
  _encode?: (h: tar.Header) => void;
  push(chunk: Buffer): boolean;
}

/**
 * A tar pack as mksquashfs needs it. Symlink headers are written above,
 * every other header by tar-stream, in `_encode` (called in entry order as
 * each entry opens; not in its typings, so checked here: were it ever
 * renamed, every conversion stops at once rather than writing wrong links).
 *
 * Its entry streams never raise an unheard 'error'. When
 * mksquashfs stops reading (refused its options, cannot write its output)
 * the pack is destroyed and every entry with it, including entries already
 * written whose pipelines are over or that only have a callback: an
 * 'error' event with no listener would crash the process with EPIPE.
 * Those who wait on an entry (a pipeline, a callback) still get the error;
 * the message shown is mksquashfs's own.
 */
export function quietPack(): tar.Pack {
  const pack = tar.pack();
  const writer = pack as unknown as HeaderWriter;
  const encode = writer._encode?.bind(pack);
  if (!encode)
    throw new Error('tar-stream Pack has no _encode: symlink headers cannot be written (tar-stream changed)');
  writer._encode = (h) => {
    if (h.type !== 'symlink') return encode(h);
    // pack.entry has filled in mode, owners and time by now; tarHeader's pax holds strings only.
    const { name, linkname, mode = 0o777, uid = 0, gid = 0, mtime = new Date(0) } = h;
    const pax = h.pax as Record<string, string> | undefined;
    writer.push(symlinkHeaderBlocks({ name, linkname: linkname ?? '', mode, uid, gid, mtime, pax }));
  };
  const entry = pack.entry.bind(pack) as (...a: unknown[]) => NodeJS.WritableStream;
  pack.entry = ((...a: unknown[]) => {
    const sink = entry(...a);
    sink.on('error', () => undefined);
    return sink;
  }) as typeof pack.entry;
  return pack;
}
