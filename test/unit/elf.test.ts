/**
 * The ELF reader on this machine's real files (/bin/ls, glibc), checked
 * against binutils' readelf, read both from the file and as a stream, and
 * on a small 32-bit file built here byte by byte.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { readElfFile } from '../../src/elf/file';
import { ElfError, bufferSource, parseElf } from '../../src/elf/format';
import { ElfCollector } from '../../src/elf/stream';

const LS = '/bin/ls';
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';

/** What readelf says: needed, soname, runpath, version needs (per file) and definitions. */
function readelf(file: string) {
  const d = execFileSync('readelf', ['-dW', file], { encoding: 'utf8' });
  const v = execFileSync('readelf', ['-VW', file], { encoding: 'utf8' });
  const needed = [...d.matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]);
  const soname = /\(SONAME\)\s+Library soname: \[(.+)\]/.exec(d)?.[1];
  const requires: Record<string, string[]> = {};
  const need = v.split(/Version needs section/)[1] ?? '';
  let file_ = '';
  for (const line of need.split('\n')) {
    const f = /File: (\S+)/.exec(line);
    if (f) requires[(file_ = f[1])] = [];
    const n = /Name: (\S+)\s+Flags/.exec(line);
    if (n && file_) requires[file_].push(n[1]);
  }
  const def = (v.split(/Version definition section/)[1] ?? '').split(/Version needs section/)[0];
  const defines = [...def.matchAll(/Rev: \d+\s+Flags: (\S+)\s+Index: \d+\s+Cnt: \d+\s+Name: (\S+)/g)]
    .filter((m) => m[1] !== 'BASE')
    .map((m) => m[2]);
  return { needed, soname, requires, defines };
}

async function streamed(file: string, chunk: number) {
  const buf = readFileSync(file);
  const c = new ElfCollector(buf.length);
  for (let i = 0; i < buf.length; i += chunk) c.push(buf.subarray(i, i + chunk));
  return c.finish();
}

describe('ELF reader on real files', () => {
  it.each([LS, LIBC])('reads %s as readelf does', async (file) => {
    const info = (await readElfFile(file))!;
    const ref = readelf(file);
    expect(info.bits).toBe(64);
    expect(info.machine).toBe(62);
    expect(info.needed).toEqual(ref.needed);
    expect(info.soname).toBe(ref.soname);
    expect(Object.fromEntries(info.requires.map((r) => [r.file, r.versions]))).toEqual(ref.requires);
    expect(info.defines).toEqual(ref.defines);
  });

  it('finds what glibc defines and what ls needs from it', async () => {
    const libc = (await readElfFile(LIBC))!;
    expect(libc.soname).toBe('libc.so.6');
    expect(libc.defines).toEqual(expect.arrayContaining(['GLIBC_2.2.5', 'GLIBC_2.34']));
    const ls = (await readElfFile(LS))!;
    expect(ls.interp).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(ls.requires.find((r) => r.file === 'libc.so.6')!.versions).toContain('GLIBC_2.34');
  });

  it.each([61, 4096, 1 << 20])('reads the same from a stream in chunks of %d bytes', async (chunk) => {
    for (const file of [LS, LIBC]) expect(await streamed(file, chunk)).toEqual(await readElfFile(file));
  });

  it('reads only headers and the dynamic ranges from a file', async () => {
    const size = (await fs.stat(LIBC)).size;
    const fh = await fs.open(LIBC, 'r');
    let bytes = 0;
    try {
      await parseElf({
        size,
        read: async (o, n) => {
          bytes += n;
          const b = Buffer.alloc(n);
          await fh.read(b, 0, n, o);
          return b;
        },
      });
    } finally {
      await fh.close();
    }
    expect(bytes).toBeLessThan(size / 10);
  });

  it('says undefined for a file that is not ELF, and refuses a cut one', async () => {
    expect(await readElfFile('/etc/passwd')).toBeUndefined();
    const head = readFileSync(LIBC).subarray(0, 2000);
    await expect(parseElf({ ...bufferSource(head), size: head.length })).rejects.toThrow(ElfError);
    const c = new ElfCollector(5);
    c.push(Buffer.from('#!/bi'));
    expect(await c.finish()).toBeUndefined();
  });
});

/** A 32-bit little-endian shared library: one PT_LOAD over the file, a PT_DYNAMIC, strings, verneed and verdef. */
function elf32(): Buffer {
  const strs = ['', 'libx.so.1', 'libc.so.6', 'GLIBC_2.0', 'GLIBC_2.1.3', 'X_1.0', '$ORIGIN/../lib'];
  const strtab = Buffer.from(strs.join('\0') + '\0');
  const off = (s: string) => strtab.indexOf(Buffer.from(`\0${s}\0`)) + 1;
  const EH = 52,
    PH = 32;
  const strAt = EH + 2 * PH;
  const verneedAt = strAt + strtab.length + ((4 - (strtab.length % 4)) % 4);
  const verdefAt = verneedAt + 16 + 32;
  const dynAt = verdefAt + 2 * (20 + 8);
  const dyn: Array<[number, number]> = [
    [14, off('libx.so.1')],
    [1, off('libc.so.6')],
    [29, off('$ORIGIN/../lib')],
    [5, strAt],
    [10, strtab.length],
    [0x6ffffffe, verneedAt],
    [0x6fffffff, 1],
    [0x6ffffffc, verdefAt],
    [0x6ffffffd, 2],
    [0, 0],
  ];
  const size = dynAt + dyn.length * 8;
  const b = Buffer.alloc(size);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 1;
  b[5] = 1;
  b[6] = 1;
  b.writeUInt16LE(3, 16);
  b.writeUInt16LE(3, 18);
  b.writeUInt32LE(1, 20);
  b.writeUInt32LE(EH, 28);
  b.writeUInt16LE(EH, 40);
  b.writeUInt16LE(PH, 42);
  b.writeUInt16LE(2, 44);
  const ph = (i: number, type: number, offset: number, filesz: number) => {
    const o = EH + i * PH;
    b.writeUInt32LE(type, o);
    b.writeUInt32LE(offset, o + 4);
    b.writeUInt32LE(offset, o + 8);
    b.writeUInt32LE(filesz, o + 16);
  };
  ph(0, 1, 0, size);
  ph(1, 2, dynAt, dyn.length * 8);
  strtab.copy(b, strAt);
  // verneed: one file, two versions.
  b.writeUInt16LE(1, verneedAt);
  b.writeUInt16LE(2, verneedAt + 2);
  b.writeUInt32LE(off('libc.so.6'), verneedAt + 4);
  b.writeUInt32LE(16, verneedAt + 8);
  b.writeUInt32LE(off('GLIBC_2.0'), verneedAt + 16 + 8);
  b.writeUInt32LE(16, verneedAt + 16 + 12);
  b.writeUInt32LE(off('GLIBC_2.1.3'), verneedAt + 32 + 8);
  // verdef: the base (the file's name) and X_1.0.
  const vd = (o: number, flags: number, name: string, next: number) => {
    b.writeUInt16LE(1, o);
    b.writeUInt16LE(flags, o + 2);
    b.writeUInt16LE(1, o + 6);
    b.writeUInt32LE(20, o + 12);
    b.writeUInt32LE(next, o + 16);
    b.writeUInt32LE(off(name), o + 20);
  };
  vd(verdefAt, 1, 'libx.so.1', 28);
  vd(verdefAt + 28, 0, 'X_1.0', 0);
  dyn.forEach(([t, v], i) => {
    b.writeInt32LE(t, dynAt + i * 8);
    b.writeUInt32LE(v, dynAt + i * 8 + 4);
  });
  return b;
}

describe('ELF reader on a 32-bit file', () => {
  it('reads soname, needed, runpath and both version tables', async () => {
    const info = await parseElf(bufferSource(elf32()));
    expect(info).toEqual({
      bits: 32,
      machine: 3,
      type: 'dyn',
      soname: 'libx.so.1',
      needed: ['libc.so.6'],
      rpath: [],
      runpath: ['$ORIGIN/../lib'],
      requires: [{ file: 'libc.so.6', versions: ['GLIBC_2.0', 'GLIBC_2.1.3'] }],
      defines: ['X_1.0'],
    });
  });

  it('refuses a string offset outside the table', async () => {
    const b = elf32();
    // DT_SONAME's value is the first dynamic entry's.
    const dynAt = b.readUInt32LE(52 + 32 + 4);
    b.writeUInt32LE(0xffff, dynAt + 4);
    await expect(parseElf(bufferSource(b))).rejects.toThrow(/string offset/);
  });
});
