/**
 * A tar stream's members, chunk by chunk, without copying their data:
 * each member's header as a reader sees it (pax and GNU long-name records
 * applied) and then its data, as slices of the chunks they came in.
 *
 * One reading for every raw walk of a tar: the check that an engine's
 * stream is whole (tar-end.ts) and the converter that edits an export as
 * it passes (convert/tar-pass.ts). A pax `size=` record counts: Go's tar
 * writer (the engine's) puts a size of 8 GiB or more only there and a zero
 * in the header's field, so a walk that read only the field would take the
 * member's data for headers.
 */
import { TAR_BLOCK, tarChecksumOk, tarNumber } from './tar-header';

/** Type flags whose size field names no data (tar readers skip none): links, devices, directories, FIFOs. */
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

/** Extension records: pax (one member, global), GNU long name and long link. */
const EXTENSIONS = new Set(['x', 'g', 'L', 'K']);

/** Longer extension records than this are not a tar's (tar-stream's own cap). */
const MAX_EXTENSION = 4 * 1024 * 1024;

/** tar-stream's names for the type flags, so the flattener's readers take either; others are null. */
const TYPE_NAMES: Record<string, string> = {
  '0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
};

/** A member's header fields as a reader sees them (tar-stream's names, which the flattener reads too). */
export interface TarHeader {
  name: string;
  type?: string | null;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: Date;
  size?: number;
  linkname?: string | null;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string> | null;
}

export interface WalkedMember {
  header: TarHeader;
  /** The raw type flag ('0' for a NUL one). */
  typeflag: string;
  /** Its data's size in bytes (the data events carry it padded to whole blocks). */
  size: number;
}

export interface TarWalkEvents {
  /** A member's headers are whole; its data follow. Throwing stops the walk. */
  member?(m: WalkedMember): void;
  /** The current member's data and padding, in order, as slices of the fed chunks. */
  data?(piece: Buffer): void;
}

/** The string in a header field: up to its first NUL. */
export function tarString(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
}

/** A pax extended header's records (`<len> <key>=<value>\n`), up to the first malformed one. */
export function paxRecords(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < body.length) {
    const sp = body.indexOf(0x20, at);
    const len = sp < 0 ? NaN : Number(body.toString('latin1', at, sp));
    if (!Number.isInteger(len) || len <= 0 || at + len > body.length) break;
    const rec = body.toString('utf8', sp + 1, at + len - 1);
    const eq = rec.indexOf('=');
    if (eq < 0) break;
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    at += len;
  }
  return out;
}

const whole = (n: number) => Math.ceil(n / TAR_BLOCK) * TAR_BLOCK;

export class TarWalk {
  /** Bytes fed so far. */
  pos = 0;
  /** Where the last header (of a member or an extension record) started. */
  lastHeader = -1;
  /** The end-of-archive block was met; whatever follows is not read. */
  ended = false;
  /** Bytes of the header block under way. */
  held = 0;
  /** Bytes of data (or extension records) still to come, in whole blocks. */
  left = 0;
  /** After a GNU sparse header whose map goes on: its data (in whole blocks), after the extension blocks. */
  sparseData?: number;
  private readonly head = Buffer.alloc(TAR_BLOCK);
  /** The extension record being read. */
  private ext?: { typeflag: string; size: number; parts: Buffer[] };
  private pax?: Record<string, string>;
  private globalPax?: Record<string, string>;
  private longName?: string;
  private longLink?: string;

  constructor(private readonly on: TarWalkEvents = {}) {}

  /** Takes the stream's next chunk; throws on a header that is not a tar's. */
  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - at);
        const piece = chunk.subarray(at, at + n);
        if (this.ext) this.ext.parts.push(Buffer.from(piece));
        else this.on.data?.(piece);
        this.left -= n;
        this.pos += n;
        at += n;
        if (this.left === 0 && this.ext) this.endExtension();
        continue;
      }
      const n = Math.min(TAR_BLOCK - this.held, chunk.length - at);
      chunk.copy(this.head, this.held, at, at + n);
      this.held += n;
      this.pos += n;
      at += n;
      if (this.held < TAR_BLOCK) return;
      this.held = 0;
      this.block();
    }
  }

  private block(): void {
    const h = this.head;
    if (this.sparseData !== undefined) {
      // A GNU sparse header's extension block: another follows while its flag at 504 is set.
      if (h[504] !== 1) {
        this.left = this.sparseData;
        this.sparseData = undefined;
      }
      return;
    }
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const at = this.pos - TAR_BLOCK;
    if (!tarChecksumOk(h)) throw new Error(`not a tar: a bad header checksum at byte ${at}`);
    this.lastHeader = at;
    const typeflag = String.fromCharCode(h[156] || 0x30);
    const fieldSize = tarNumber(h, 124, 12);
    if (EXTENSIONS.has(typeflag)) {
      if (fieldSize > MAX_EXTENSION) throw new Error(`not a tar: a ${fieldSize}-byte extension header at byte ${at}`);
      this.ext = { typeflag, size: fieldSize, parts: [] };
      this.left = whole(fieldSize);
      if (this.left === 0) this.endExtension();
      return;
    }
    const pax = this.pax || this.globalPax ? { ...this.globalPax, ...this.pax } : undefined;
    const paxSize = pax?.size !== undefined && /^\d+$/.test(pax.size) ? Number(pax.size) : undefined;
    const size = HEADER_ONLY.has(typeflag) ? 0 : (paxSize ?? fieldSize);
    const prefix = h.toString('latin1', 257, 263) === 'ustar\0' ? tarString(h, 345, 155) : '';
    const field = tarString(h, 0, 100);
    const name = pax?.path ?? this.longName ?? (prefix ? `${prefix}/${field}` : field);
    const linkname = pax?.linkpath ?? this.longLink ?? (h[157] === 0 ? null : tarString(h, 157, 100));
    // As tar-stream reads it: an old tar marks a directory by a trailing slash on a plain file.
    const type = typeflag === '0' && name.endsWith('/') ? 'directory' : (TYPE_NAMES[typeflag] ?? null);
    const header: TarHeader = {
      name,
      type,
      mode: tarNumber(h, 100, 8),
      uid: tarNumber(h, 108, 8),
      gid: tarNumber(h, 116, 8),
      size,
      mtime: new Date(tarNumber(h, 136, 12) * 1000),
      linkname,
      uname: tarString(h, 265, 32),
      gname: tarString(h, 297, 32),
      devmajor: tarNumber(h, 329, 8),
      devminor: tarNumber(h, 337, 8),
      pax: pax ?? null,
    };
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    this.on.member?.({ header, typeflag, size });
    // An old GNU sparse file whose map goes on past its header (flag at 482): its data follow the extension blocks.
    if (typeflag === 'S' && h[482] === 1) this.sparseData = whole(size);
    else this.left = whole(size);
  }

  private endExtension(): void {
    const { typeflag, size, parts } = this.ext as NonNullable<TarWalk['ext']>;
    this.ext = undefined;
    const body = Buffer.concat(parts).subarray(0, size);
    if (typeflag === 'x') this.pax = { ...this.pax, ...paxRecords(body) };
    else if (typeflag === 'g') this.globalPax = { ...this.globalPax, ...paxRecords(body) };
    else if (typeflag === 'L') this.longName = tarString(body, 0, body.length);
    else this.longLink = tarString(body, 0, body.length);
  }
}
