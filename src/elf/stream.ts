/**
 * Reading an ELF file that arrives as a stream (a member of `unsquashfs
 * -cat` or of a `docker export`), keeping only the ranges the dynamic
 * linker's view needs: the first loaded segment (where every linker puts
 * the dynamic string table and the version sections; capped) and the
 * dynamic segment. The rest passes by unkept, so a library of gigabytes
 * costs little memory. Pure.
 */
import {
  ELF_HEAD,
  ElfError,
  decodeElfHeader,
  decodeSegments,
  isElfMagic,
  parseElf,
  rangesToKeep,
  type ElfInfo,
  type ElfSource,
} from './format';

/** Files this small are kept whole (simplest, and cheap). */
const KEEP_WHOLE = 4 << 20;
/** The most kept of any one range. */
const RANGE_CAP = 256 << 20;

interface Range {
  start: number;
  end: number;
  parts: Buffer[];
}

export class ElfCollector {
  private pos = 0;
  private pending: Buffer[] = [];
  private ranges: Range[] | undefined;
  private notElf = false;

  /** `size`: the file's size, as the listing or the tar header gives it. */
  constructor(readonly size: number) {}

  /** Feeds the file's next bytes. */
  push(chunk: Buffer): void {
    const at = this.pos;
    this.pos += chunk.length;
    if (this.notElf) return;
    if (this.ranges) return this.keep(chunk, at);
    this.pending.push(chunk);
    this.decide();
  }

  /** Whether the rest of the file can be skipped unread (not an ELF file). */
  get done(): boolean {
    return this.notElf;
  }

  private keep(chunk: Buffer, at: number): void {
    const end = at + chunk.length;
    for (const r of this.ranges!) {
      const s = Math.max(r.start, at);
      const e = Math.min(r.end, end);
      // A copy: the chunk's buffer may be reused by its producer.
      if (s < e) r.parts.push(Buffer.from(chunk.subarray(s - at, e - at)));
    }
  }

  /** Once the program headers are in, chooses the ranges to keep. */
  private decide(): void {
    if (this.pos < Math.min(ELF_HEAD, this.size)) return;
    const head = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [head];
    if (!isElfMagic(head)) {
      this.notElf = true;
      this.pending = [];
      return;
    }
    if (this.size <= KEEP_WHOLE) return this.settle([{ start: 0, end: this.size, parts: [] }]);
    let h;
    try {
      h = decodeElfHeader(head.subarray(0, ELF_HEAD));
    } catch {
      return this.settle([{ start: 0, end: Math.min(this.size, ELF_HEAD), parts: [] }]); // finish() reports it
    }
    const tableEnd = h.phoff + h.phnum * h.phentsize;
    if (tableEnd > KEEP_WHOLE) {
      // patchelf (auditwheel, conda) moves the program headers, and the
      // strings with them, to the end: nothing to choose by, keep it all (capped).
      return this.settle([{ start: 0, end: Math.min(this.size, RANGE_CAP), parts: [] }]);
    }
    if (head.length < tableEnd) return;
    const segments = decodeSegments(h, head.subarray(h.phoff, tableEnd));
    const keep = [{ offset: 0, size: tableEnd }, ...rangesToKeep(segments)];
    this.settle(
      keep.map((k) => ({
        start: k.offset,
        end: Math.min(this.size, k.offset + Math.min(k.size, RANGE_CAP)),
        parts: [],
      })),
    );
  }

  private settle(ranges: Range[]): void {
    this.ranges = ranges;
    let at = 0;
    for (const b of this.pending) {
      this.keep(b, at);
      at += b.length;
    }
    this.pending = [];
  }

  /** Parses what was kept: undefined when the file is not ELF, an ElfError when it is malformed. */
  async finish(): Promise<ElfInfo | undefined> {
    if (this.notElf) return undefined;
    if (!this.ranges) {
      const head = Buffer.concat(this.pending);
      if (!isElfMagic(head)) return undefined;
      this.settle([{ start: 0, end: this.pos, parts: [] }]);
    }
    const ranges = this.ranges!.map((r) => ({ start: r.start, buf: Buffer.concat(r.parts) }));
    const src: ElfSource = {
      size: this.size,
      read: async (offset, length) => {
        const r = ranges.find((x) => offset >= x.start && offset + length <= x.start + x.buf.length);
        if (!r) throw new ElfError(`bytes ${offset}..${offset + length} lie outside what a streamed read keeps`);
        return r.buf.subarray(offset - r.start, offset - r.start + length);
      },
    };
    return parseElf(src);
  }
}
