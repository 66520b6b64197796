/**
 * glibc-hwcaps, pure: the x86-64 level from CPU flags, the subdirectories
 * an image's ld.so searches for it (none before glibc 2.33), the search
 * order they take in each directory and in ld.so.cache lookups.
 */
import { cpuinfoFlags, hwcapsSubdirs, x86Level } from '../../src/compat/hwcaps';
import { resolveAll, type ViewEntry } from '../../src/compat/linker';
import type { ElfInfo } from '../../src/elf/format';
import { cacheLookup, type LdCacheEntry } from '../../src/elf/ldcache';

const V2 = ['cx16', 'lahf_lm', 'popcnt', 'pni', 'sse4_1', 'sse4_2', 'ssse3'];
const V3 = ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'];
const V4 = ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'];

describe('x86-64 levels', () => {
  it('is the highest level whose flags and every lower one are there', () => {
    expect(x86Level(['fpu', 'sse2'])).toBe('x86-64');
    expect(x86Level([...V2])).toBe('x86-64-v2');
    expect(x86Level([...V2, ...V3])).toBe('x86-64-v3');
    expect(x86Level([...V2, ...V3, ...V4])).toBe('x86-64-v4');
    // AVX-512 without v3's flags is not v4; one v2 flag missing is the base level.
    expect(x86Level([...V2, ...V4])).toBe('x86-64-v2');
    expect(x86Level([...V2.slice(1), ...V3, ...V4])).toBe('x86-64');
  });

  it("reads the first processor's flags from /proc/cpuinfo text", () => {
    const text = `processor\t: 0\nflags\t\t: ${V2.join(' ')} avx\n\nprocessor\t: 1\nflags\t\t: ${[...V2, ...V3, ...V4].join(' ')}\n`;
    expect(x86Level(cpuinfoFlags(text))).toBe('x86-64-v2');
    expect(cpuinfoFlags('processor: 0\n')).toEqual([]);
  });

  it('gives the subdirectories best first, none before glibc 2.33 or without a level', () => {
    expect(hwcapsSubdirs('x86-64-v3', '2.36')).toEqual(['glibc-hwcaps/x86-64-v3', 'glibc-hwcaps/x86-64-v2']);
    expect(hwcapsSubdirs('x86-64-v4', '2.33')).toHaveLength(3);
    expect(hwcapsSubdirs('x86-64', '2.41')).toEqual([]);
    expect(hwcapsSubdirs('x86-64-v4', '2.32')).toEqual([]);
    expect(hwcapsSubdirs('x86-64-v4', '2.30')).toEqual([]);
    expect(hwcapsSubdirs(undefined, '2.36')).toEqual([]);
    expect(hwcapsSubdirs('x86-64-v4', null)).toEqual([]);
  });
});

const elf = (o: Partial<ElfInfo>): ElfInfo => ({
  bits: 64,
  machine: 62,
  type: 'dyn',
  needed: [],
  rpath: [],
  runpath: [],
  requires: [],
  defines: [],
  ...o,
});
const file = (e: Partial<ElfInfo>): ViewEntry => ({ kind: 'file', elf: elf(e), origin: 'image' });
const dir: ViewEntry = { kind: 'dir', origin: 'image' };
const L = '/usr/lib/x86_64-linux-gnu';

describe('the search with glibc-hwcaps subdirectories', () => {
  const view = new Map<string, ViewEntry>([
    ['/usr', dir],
    ['/usr/lib', dir],
    [L, dir],
    [`${L}/glibc-hwcaps`, dir],
    [`${L}/glibc-hwcaps/x86-64-v2`, dir],
    [`${L}/glibc-hwcaps/x86-64-v3`, dir],
    ['/opt', dir],
    ['/opt/lib', dir],
    ['/opt/lib/glibc-hwcaps', dir],
    ['/opt/lib/glibc-hwcaps/x86-64-v4', dir],
    ['/usr/bin', dir],
    ['/usr/bin/app', file({ type: 'exec', needed: ['liba.so.1', 'libb.so.1', 'libc4.so.1'] })],
    [`${L}/liba.so.1`, file({ soname: 'liba.so.1' })],
    [`${L}/glibc-hwcaps/x86-64-v2/liba.so.1`, file({ soname: 'liba.so.1' })],
    [`${L}/glibc-hwcaps/x86-64-v3/liba.so.1`, file({ soname: 'liba.so.1' })],
    [`${L}/glibc-hwcaps/x86-64-v2/libb.so.1`, file({ soname: 'libb.so.1' })],
    ['/opt/lib/glibc-hwcaps/x86-64-v4/libc4.so.1', file({ soname: 'libc4.so.1' })],
  ]);
  const found = (hwcaps: string[], name: string) =>
    resolveAll(view, new Map(), { ldLibraryPath: ['/opt/lib'], hwcaps, roots: ['/usr/bin/app'] }).resolved.get(
      `/usr/bin/app\0${name}`,
    );

  it("takes each directory's best subdirectory first, then the directory, on to the next directory", () => {
    const v4 = ['glibc-hwcaps/x86-64-v4', 'glibc-hwcaps/x86-64-v3', 'glibc-hwcaps/x86-64-v2'];
    expect(found(v4, 'liba.so.1')).toBe(`${L}/glibc-hwcaps/x86-64-v3/liba.so.1`);
    expect(found(v4.slice(2), 'liba.so.1')).toBe(`${L}/glibc-hwcaps/x86-64-v2/liba.so.1`);
    expect(found([], 'liba.so.1')).toBe(`${L}/liba.so.1`);
    expect(found(v4, 'libb.so.1')).toBe(`${L}/glibc-hwcaps/x86-64-v2/libb.so.1`);
    expect(found([], 'libb.so.1')).toBeUndefined();
    // In an LD_LIBRARY_PATH directory too, and only at a level the CPU has.
    expect(found(v4, 'libc4.so.1')).toBe('/opt/lib/glibc-hwcaps/x86-64-v4/libc4.so.1');
    expect(found(v4.slice(1), 'libc4.so.1')).toBeUndefined();
  });

  it('prefers the best hwcaps entry of ld.so.cache the CPU supports, else the plain one', () => {
    const F = 0x0303;
    const entries: LdCacheEntry[] = [
      { name: 'libz.so.1', path: `${L}/glibc-hwcaps/x86-64-v2/libz.so.1`, flags: F, hwcaps: 'glibc-hwcaps/x86-64-v2' },
      { name: 'libz.so.1', path: `${L}/glibc-hwcaps/x86-64-v4/libz.so.1`, flags: F, hwcaps: 'glibc-hwcaps/x86-64-v4' },
      { name: 'libz.so.1', path: `${L}/libz.so.1`, flags: F },
      { name: 'libq.so.1', path: `${L}/glibc-hwcaps/x86-64-v3/libq.so.1`, flags: F, hwcaps: 'glibc-hwcaps/x86-64-v3' },
    ];
    const all = ['glibc-hwcaps/x86-64-v4', 'glibc-hwcaps/x86-64-v3', 'glibc-hwcaps/x86-64-v2'];
    expect(cacheLookup(entries, all)('libz.so.1', F)).toBe(`${L}/glibc-hwcaps/x86-64-v4/libz.so.1`);
    expect(cacheLookup(entries, all.slice(1))('libz.so.1', F)).toBe(`${L}/glibc-hwcaps/x86-64-v2/libz.so.1`);
    expect(cacheLookup(entries)('libz.so.1', F)).toBe(`${L}/libz.so.1`);
    expect(cacheLookup(entries, all.slice(2))('libq.so.1', F)).toBeUndefined();
    expect(cacheLookup(entries, all)('libq.so.1', 0x0003)).toBeUndefined();
  });
});
