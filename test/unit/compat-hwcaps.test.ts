/**
 * glibc-hwcaps, pure: the x86-64 level from CPU flags, the subdirectories
 * an image's ld.so searches for it (none before glibc 2.33), the search
 * order they take in each directory and in ld.so.cache lookups; the
 * legacy hwcaps subdirectories (glibc 2.26 to 2.36) by CPU maker and level.
 */
import { hwcapsOf } from '../../src/compat/check';
import { cpuinfoFlags, cpuinfoVendor, hwcapsSubdirs, legacyHwcapsSubdirs, x86Level } from '../../src/compat/hwcaps';
import { resolveAll } from '../../src/compat/linker';
import type { ViewEntry } from '../../src/compat/view';
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

/** What bullseye's ld.so (glibc 2.31) printed for LD_LIBRARY_PATH=/nonexist under LD_DEBUG=libs on an Intel x86-64-v4 CPU. */
const INTEL_V4_LDSO = [
  'tls/haswell/avx512_1/x86_64',
  'tls/haswell/avx512_1',
  'tls/haswell/x86_64',
  'tls/haswell',
  'tls/avx512_1/x86_64',
  'tls/avx512_1',
  'tls/x86_64',
  'tls',
  'haswell/avx512_1/x86_64',
  'haswell/avx512_1',
  'haswell/x86_64',
  'haswell',
  'avx512_1/x86_64',
  'avx512_1',
  'x86_64',
];

describe('legacy hwcaps subdirectories (glibc 2.26 to 2.36)', () => {
  const intel = (level: Parameters<typeof hwcapsSubdirs>[0]) => ({ level, vendor: 'GenuineIntel' });
  const amd = (level: Parameters<typeof hwcapsSubdirs>[0]) => ({ level, vendor: 'AuthenticAMD' });

  it("reads the CPU's maker from /proc/cpuinfo text", () => {
    expect(cpuinfoVendor('processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n')).toBe('AuthenticAMD');
    expect(cpuinfoVendor('processor\t: 0\nvendor_id\t: Genuine Intel?\n')).toBeUndefined();
    expect(cpuinfoVendor('processor: 0\n')).toBeUndefined();
  });

  it("gives ld.so's order: on Intel the platform haswell and avx512_1 by level, elsewhere x86_64 only", () => {
    expect(legacyHwcapsSubdirs(intel('x86-64-v4'), '2.31').search).toEqual(INTEL_V4_LDSO);
    expect(legacyHwcapsSubdirs(intel('x86-64-v3'), '2.36').search).toEqual([
      'tls/haswell/x86_64',
      'tls/haswell',
      'tls/x86_64',
      'tls',
      'haswell/x86_64',
      'haswell',
      'x86_64',
    ]);
    // AMD (LUMI's nodes): the platform is the kernel's x86_64, as is the hwcap; each path once.
    const offIntel = ['tls/x86_64/x86_64', 'tls/x86_64', 'tls', 'x86_64/x86_64', 'x86_64'];
    expect(legacyHwcapsSubdirs(amd('x86-64-v4'), '2.31').search).toEqual(offIntel);
    expect(legacyHwcapsSubdirs(intel('x86-64-v2'), '2.31').search).toEqual(offIntel);
    // An older snapshot (no maker, no level) counts as not Intel.
    expect(legacyHwcapsSubdirs({ level: undefined, vendor: undefined }, '2.28').search).toEqual(offIntel);
  });

  it('gives none from glibc 2.37 on, before 2.26, or without a glibc', () => {
    for (const g of ['2.37', '2.41', '2.25', '2.17'])
      expect(legacyHwcapsSubdirs(intel('x86-64-v4'), g)).toEqual({ search: [], cache: [] });
    expect(legacyHwcapsSubdirs(intel('x86-64-v4'), null)).toEqual({ search: [], cache: [] });
  });

  it('orders ld.so.cache entries as ldconfig sorts them: more capabilities first, then by their bits', () => {
    const { search, cache } = legacyHwcapsSubdirs(intel('x86-64-v3'), '2.31');
    expect(cache).toEqual([
      'tls/haswell/x86_64',
      'tls/haswell',
      'tls/x86_64',
      'haswell/x86_64',
      'tls',
      'haswell',
      'x86_64',
    ]);
    expect([...cache].sort()).toEqual([...search].sort());
    const F = 0x0303;
    const entries: LdCacheEntry[] = [
      { name: 'libz.so.1', path: `${L}/libz.so.1`, flags: F },
      { name: 'libz.so.1', path: `${L}/tls/libz.so.1`, flags: F, hwcaps: 'tls' },
      { name: 'libz.so.1', path: `${L}/haswell/x86_64/libz.so.1`, flags: F, hwcaps: 'haswell/x86_64' },
      { name: 'libq.so.1', path: `${L}/haswell/libq.so.1`, flags: F, hwcaps: 'haswell' },
    ];
    expect(cacheLookup(entries, cache)('libz.so.1', F)).toBe(`${L}/haswell/x86_64/libz.so.1`);
    expect(cacheLookup(entries, cache)('libq.so.1', F)).toBe(`${L}/haswell/libq.so.1`);
    // Off Intel a haswell entry does not fit.
    const off = legacyHwcapsSubdirs(amd('x86-64-v3'), '2.31').cache;
    expect(cacheLookup(entries, off)('libz.so.1', F)).toBe(`${L}/tls/libz.so.1`);
    expect(cacheLookup(entries, off)('libq.so.1', F)).toBeUndefined();
  });

  it('puts them after the glibc-hwcaps subdirectories, on x86-64 hosts only', () => {
    const host = { arch: 'x86_64', x86Level: 'x86-64-v4' as const, cpuVendor: 'GenuineIntel' };
    expect(hwcapsOf(host, '2.36').hwcaps).toEqual([
      'glibc-hwcaps/x86-64-v4',
      'glibc-hwcaps/x86-64-v3',
      'glibc-hwcaps/x86-64-v2',
      ...INTEL_V4_LDSO,
    ]);
    expect(hwcapsOf(host, '2.31').hwcaps).toEqual(INTEL_V4_LDSO);
    expect(hwcapsOf(host, '2.41').hwcaps).toEqual(hwcapsSubdirs('x86-64-v4', '2.41'));
    expect(hwcapsOf({ arch: 'aarch64' }, '2.31')).toEqual({ hwcaps: [], cacheHwcaps: [] });
  });

  it('finds a library in a legacy subdirectory of a search directory, the best one the CPU has', () => {
    const view = new Map<string, ViewEntry>([
      ['/usr', dir],
      ['/usr/lib', dir],
      [L, dir],
      [`${L}/haswell`, dir],
      [`${L}/x86_64`, dir],
      ['/usr/bin', dir],
      ['/usr/bin/app', file({ type: 'exec', needed: ['libz.so.1'] })],
      [`${L}/haswell/libz.so.1`, file({ soname: 'libz.so.1' })],
      [`${L}/x86_64/libz.so.1`, file({ soname: 'libz.so.1' })],
    ]);
    const found = (host: Parameters<typeof hwcapsOf>[0], glibc: string) =>
      resolveAll(view, new Map(), {
        ldLibraryPath: [],
        ...hwcapsOf(host, glibc),
        roots: ['/usr/bin/app'],
      }).resolved.get('/usr/bin/app\0libz.so.1');
    const intelHost = { arch: 'x86_64', x86Level: 'x86-64-v3' as const, cpuVendor: 'GenuineIntel' };
    expect(found(intelHost, '2.31')).toBe(`${L}/haswell/libz.so.1`);
    expect(found({ ...intelHost, cpuVendor: 'AuthenticAMD' }, '2.31')).toBe(`${L}/x86_64/libz.so.1`);
    expect(found(intelHost, '2.37')).toBeUndefined();
  });
});
