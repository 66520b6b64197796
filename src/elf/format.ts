/**
 * The dynamic-linking facts of an ELF file, read as the dynamic linker
 * reads them: ELF header, program headers, the dynamic segment, then the
 * string table and the version sections it points at (`.gnu.version_r`,
 * `.gnu.version_d` through DT_VERNEED/DT_VERDEF). Section headers are never
 * needed, so a stripped file reads the same, and only a few small ranges
 * of a file are ever asked for. Pure: bytes come from an `ElfSource`.
 */

/** Random access to a file's bytes; `read` may return fewer bytes only at the end. */
export interface ElfSource {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export interface VersionNeed {
  /** The library (its DT_NEEDED name) the versions must come from. */
  file: string;
  versions: string[];
}

export interface ElfInfo {
  bits: 32 | 64;
  /** e_machine: 62 x86-64, 183 AArch64, 3 i386... */
  machine: number;
  type: 'exec' | 'dyn' | 'other';
  interp?: string;
  soname?: string;
  needed: string[];
  rpath: string[];
  runpath: string[];
  /** Symbol versions required (verneed), per providing library. */
  requires: VersionNeed[];
  /** Symbol versions defined (verdef), less the base entry (the file's own name). */
  defines: string[];
}

export class ElfError extends Error {}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT = {
  NULL: 0,
  NEEDED: 1,
  STRTAB: 5,
  STRSZ: 10,
  SONAME: 14,
  RPATH: 15,
  RUNPATH: 29,
  VERDEF: 0x6ffffffc,
  VERDEFNUM: 0x6ffffffd,
  VERNEED: 0x6ffffffe,
  VERNEEDNUM: 0x6fffffff,
};
const VER_FLG_BASE = 1;

/** Bounds against corrupt files: no real library comes near these. */
const MAX_PHDRS = 4096;
const MAX_DYNAMIC = 1 << 20;
const MAX_STRTAB = 64 << 20;
const MAX_VERSIONS = 65536;

/** True when the bytes start with the ELF magic. */
export function isElfMagic(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

/** How many bytes `parseElf` reads first: the largest ELF header. */
export const ELF_HEAD = 64;

export interface Reader {
  bits: 32 | 64;
  u16(b: Buffer, o: number): number;
  u32(b: Buffer, o: number): number;
  /** A 32- or 64-bit word as a number (offsets and addresses of real files fit in 2^53). */
  word(b: Buffer, o: number): number;
  /** A signed word (d_tag). */
  sword(b: Buffer, o: number): number;
}

function readerFor(head: Buffer): Reader {
  const bits = head[4] === 1 ? 32 : head[4] === 2 ? 64 : undefined;
  if (!bits) throw new ElfError(`unknown ELF class ${head[4]}`);
  const le = head[5] === 1;
  if (!le && head[5] !== 2) throw new ElfError(`unknown ELF data encoding ${head[5]}`);
  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const s64 = (b: Buffer, o: number) => Number(le ? b.readBigInt64LE(o) : b.readBigInt64BE(o));
  const s32 = (b: Buffer, o: number) => (le ? b.readInt32LE(o) : b.readInt32BE(o));
  return bits === 64 ? { bits, u16, u32, word: u64, sword: s64 } : { bits, u16, u32, word: u32, sword: s32 };
}

export interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

async function readExact(src: ElfSource, offset: number, length: number, what: string): Promise<Buffer> {
  if (offset < 0 || length < 0 || offset + length > src.size) throw new ElfError(`${what} lies outside the file`);
  const b = await src.read(offset, length);
  if (b.length < length) throw new ElfError(`${what} is cut short`);
  return b;
}

export interface ElfHeader {
  r: Reader;
  machine: number;
  type: ElfInfo['type'];
  phoff: number;
  phentsize: number;
  phnum: number;
}

/** Checks and decodes the ELF header (the first 64 bytes, fewer for a tiny 32-bit file). */
export function decodeElfHeader(head: Buffer): ElfHeader {
  if (!isElfMagic(head)) throw new ElfError('not an ELF file');
  if (head.length < 52) throw new ElfError('the ELF header is cut short');
  const r = readerFor(head);
  const e =
    r.bits === 64
      ? { type: 16, machine: 18, phoff: 32, phentsize: 54, phnum: 56 }
      : { type: 16, machine: 18, phoff: 28, phentsize: 42, phnum: 44 };
  if (r.bits === 64 && head.length < 64) throw new ElfError('the ELF header is cut short');
  const etype = r.u16(head, e.type);
  const phentsize = r.u16(head, e.phentsize);
  const phnum = r.u16(head, e.phnum);
  if (phnum > MAX_PHDRS) throw new ElfError(`${phnum} program headers`);
  if (phnum && phentsize < (r.bits === 64 ? 56 : 32)) throw new ElfError(`program header size ${phentsize}`);
  return {
    r,
    machine: r.u16(head, e.machine),
    type: etype === 2 ? 'exec' : etype === 3 ? 'dyn' : 'other',
    phoff: r.word(head, e.phoff),
    phentsize,
    phnum,
  };
}

/** Decodes the program header table. */
export function decodeSegments(h: ElfHeader, table: Buffer): Segment[] {
  const { r } = h;
  const segments: Segment[] = [];
  for (let i = 0; i < h.phnum; i++) {
    const o = i * h.phentsize;
    segments.push(
      r.bits === 64
        ? {
            type: r.u32(table, o),
            offset: r.word(table, o + 8),
            vaddr: r.word(table, o + 16),
            filesz: r.word(table, o + 32),
          }
        : {
            type: r.u32(table, o),
            offset: r.word(table, o + 4),
            vaddr: r.word(table, o + 8),
            filesz: r.word(table, o + 16),
          },
    );
  }
  return segments;
}

async function readSegments(src: ElfSource): Promise<ElfHeader & { segments: Segment[] }> {
  const h = decodeElfHeader(await readExact(src, 0, Math.min(ELF_HEAD, src.size), 'the ELF header'));
  const table = h.phnum ? await readExact(src, h.phoff, h.phnum * h.phentsize, 'the program headers') : Buffer.alloc(0);
  return { ...h, segments: decodeSegments(h, table) };
}

/** Where a virtual address lies in the file, through the PT_LOAD segments. */
function fileOffset(segments: Segment[], vaddr: number, what: string): number {
  const s = segments.find((x) => x.type === PT_LOAD && vaddr >= x.vaddr && vaddr < x.vaddr + x.filesz);
  if (!s) throw new ElfError(`${what} (address 0x${vaddr.toString(16)}) is in no loaded segment`);
  return s.offset + (vaddr - s.vaddr);
}

function cString(b: Buffer, at: number, what: string): string {
  if (at < 0 || at >= b.length) throw new ElfError(`${what}: string offset ${at} outside the string table`);
  const end = b.indexOf(0, at);
  if (end < 0) throw new ElfError(`${what}: unterminated string`);
  return b.toString('utf8', at, end);
}

/**
 * The file ranges a streamed read must keep (elf/stream.ts): the first
 * loaded segment, where linkers put the dynamic string table and the
 * version sections, and the dynamic segment.
 */
export function rangesToKeep(segments: Segment[]): Array<{ offset: number; size: number }> {
  const out: Array<{ offset: number; size: number }> = [];
  const first = segments.filter((s) => s.type === PT_LOAD).sort((a, b) => a.offset - b.offset)[0];
  if (first) out.push({ offset: 0, size: first.offset + first.filesz });
  const d = segments.find((s) => s.type === PT_DYNAMIC);
  if (d) out.push({ offset: d.offset, size: d.filesz });
  return out;
}

/** Reads the dynamic-linking facts; throws ElfError on anything malformed. */
export async function parseElf(src: ElfSource): Promise<ElfInfo> {
  const { r, machine, type, segments } = await readSegments(src);
  const info: ElfInfo = { bits: r.bits, machine, type, needed: [], rpath: [], runpath: [], requires: [], defines: [] };
  const interp = segments.find((s) => s.type === PT_INTERP);
  if (interp && interp.filesz > 0 && interp.filesz < 4096)
    info.interp = cString(await readExact(src, interp.offset, interp.filesz, 'PT_INTERP'), 0, 'PT_INTERP');
  const dyn = segments.find((s) => s.type === PT_DYNAMIC);
  if (!dyn) return info; // static: needs nothing
  if (dyn.filesz > MAX_DYNAMIC) throw new ElfError(`dynamic segment of ${dyn.filesz} bytes`);
  const body = await readExact(src, dyn.offset, dyn.filesz, 'the dynamic segment');
  const esz = r.bits === 64 ? 16 : 8;
  const tags: Array<[number, number]> = [];
  for (let o = 0; o + esz <= body.length; o += esz) {
    const tag = r.sword(body, o);
    if (tag === DT.NULL) break;
    tags.push([tag, r.word(body, o + esz / 2)]);
  }
  const one = (t: number) => tags.find(([k]) => k === t)?.[1];
  const strtab = one(DT.STRTAB);
  const strsz = one(DT.STRSZ);
  if (strtab === undefined || strsz === undefined) {
    if (tags.some(([k]) => k === DT.NEEDED || k === DT.SONAME))
      throw new ElfError('DT_NEEDED or DT_SONAME without a string table');
    return info;
  }
  if (strsz > MAX_STRTAB) throw new ElfError(`string table of ${strsz} bytes`);
  const strings = await readExact(src, fileOffset(segments, strtab, 'DT_STRTAB'), strsz, 'the dynamic string table');
  const str = (at: number, what: string) => cString(strings, at, what);
  const paths = (s: string) => s.split(':').filter(Boolean);
  for (const [tag, val] of tags) {
    if (tag === DT.NEEDED) info.needed.push(str(val, 'DT_NEEDED'));
    else if (tag === DT.SONAME) info.soname = str(val, 'DT_SONAME');
    else if (tag === DT.RPATH) info.rpath.push(...paths(str(val, 'DT_RPATH')));
    else if (tag === DT.RUNPATH) info.runpath.push(...paths(str(val, 'DT_RUNPATH')));
  }
  const verneed = one(DT.VERNEED);
  if (verneed !== undefined)
    info.requires = await readVerneed(
      { src, r, str },
      fileOffset(segments, verneed, 'DT_VERNEED'),
      one(DT.VERNEEDNUM) ?? 0,
    );
  const verdef = one(DT.VERDEF);
  if (verdef !== undefined)
    info.defines = await readVerdef({ src, r, str }, fileOffset(segments, verdef, 'DT_VERDEF'), one(DT.VERDEFNUM) ?? 0);
  return info;
}

/** What the version sections are read with: the file, its byte order, its dynamic string table. */
interface Strings {
  src: ElfSource;
  r: Reader;
  str: (at: number, what: string) => string;
}

/**
 * The entries of a version section: `count` records of `size` bytes
 * chained by the 32-bit offset to the next at `nextAt` (0 ends the
 * chain), as Elf_Verneed/Elf_Vernaux and Elf_Verdef are.
 */
async function* chain(
  src: ElfSource,
  r: Reader,
  at: number,
  count: number,
  size: number,
  nextAt: number,
  what: string,
): AsyncGenerator<{ at: number; entry: Buffer }> {
  if (count > MAX_VERSIONS) throw new ElfError(`${count} ${what}s`);
  let o = at;
  for (let i = 0; i < count; i++) {
    const entry = await readExact(src, o, size, `a ${what}`);
    yield { at: o, entry };
    const next = r.u32(entry, nextAt);
    if (!next) break;
    o += next;
  }
}

/** Elf_Verneed (16 bytes) and its Elf_Vernaux entries (16 bytes), the same in both classes. */
async function readVerneed({ src, r, str }: Strings, at: number, count: number): Promise<VersionNeed[]> {
  const out: VersionNeed[] = [];
  for await (const { at: o, entry: vn } of chain(src, r, at, count, 16, 12, 'version need')) {
    const versions: string[] = [];
    for await (const { entry: aux } of chain(src, r, o + r.u32(vn, 8), r.u16(vn, 2), 16, 12, 'version need entry'))
      versions.push(str(r.u32(aux, 8), 'vna_name'));
    out.push({ file: str(r.u32(vn, 4), 'vn_file'), versions });
  }
  return out;
}

/** Elf_Verdef (20 bytes) and its first Elf_Verdaux (8 bytes): the version's name. */
async function readVerdef({ src, r, str }: Strings, at: number, count: number): Promise<string[]> {
  const out: string[] = [];
  for await (const { at: o, entry: vd } of chain(src, r, at, count, 20, 16, 'version definition')) {
    const aux = await readExact(src, o + r.u32(vd, 12), 8, 'a version definition name');
    if (!(r.u16(vd, 2) & VER_FLG_BASE)) out.push(str(r.u32(aux, 0), 'vda_name'));
  }
  return out;
}

/** An ElfSource over bytes already in memory. */
export function bufferSource(buf: Buffer): ElfSource {
  return { size: buf.length, read: async (offset, length) => buf.subarray(offset, offset + length) };
}
