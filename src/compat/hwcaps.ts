/**
 * glibc-hwcaps (glibc 2.33 and later): before each directory of its
 * search path, ld.so tries that directory's `glibc-hwcaps/<level>/`
 * subdirectories for the x86-64 micro-architecture levels the CPU
 * supports, the highest first. The levels are the x86-64 psABI's, read
 * here from the CPU flags Linux reports in /proc/cpuinfo. Until glibc
 * 2.37 it then tries the legacy hwcaps subdirectories (`tls/`,
 * `haswell/`, `x86_64/` and their combinations). Pure.
 */
import { compareVersions } from './versions';

export const X86_LEVELS = ['x86-64', 'x86-64-v2', 'x86-64-v3', 'x86-64-v4'] as const;
export type X86Level = (typeof X86_LEVELS)[number];

/** What each level adds, as /proc/cpuinfo names the flags (psABI; `pni` is SSE3, `abm` LZCNT, `xsave` stands for OSXSAVE, which cpuinfo does not show). */
const ADDS: Record<Exclude<X86Level, 'x86-64'>, string[]> = {
  'x86-64-v2': ['cx16', 'lahf_lm', 'popcnt', 'pni', 'sse4_1', 'sse4_2', 'ssse3'],
  'x86-64-v3': ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'],
  'x86-64-v4': ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'],
};

/** The highest level whose flags (and every lower level's) are all present. */
export function x86Level(flags: Iterable<string>): X86Level {
  const have = new Set(flags);
  let level: X86Level = 'x86-64';
  for (const l of ['x86-64-v2', 'x86-64-v3', 'x86-64-v4'] as const) {
    if (!ADDS[l].every((f) => have.has(f))) break;
    level = l;
  }
  return level;
}

/** The CPU's maker as /proc/cpuinfo names it (`GenuineIntel`, `AuthenticAMD`...), or undefined. */
export function cpuinfoVendor(text: string): string | undefined {
  return /^vendor_id\s*:\s*([A-Za-z0-9_-]{1,32})\s*$/m.exec(text)?.[1];
}

/** The CPU flags of the first processor in /proc/cpuinfo's text. */
export function cpuinfoFlags(text: string): string[] {
  return (/^flags\s*:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
}

/** The first glibc whose ld.so searches glibc-hwcaps subdirectories. */
const HWCAPS_SINCE = '2.33';

/**
 * The glibc-hwcaps subdirectories the image's ld.so searches on a host of
 * `level`, in its order (highest level first): none when the host's level
 * is unknown or the image's glibc predates them.
 */
export function hwcapsSubdirs(level: X86Level | undefined, imageGlibc: string | null): string[] {
  if (!level || !imageGlibc || compareVersions(imageGlibc, HWCAPS_SINCE) < 0) return [];
  const upTo = X86_LEVELS.indexOf(level);
  return X86_LEVELS.slice(1, upTo + 1)
    .reverse()
    .map((l) => `glibc-hwcaps/${l}`);
}

/** glibc 2.26 brought the x86 platforms (haswell, xeon_phi) the legacy search below follows. */
const LEGACY_SINCE = '2.26';
/** The first glibc whose ld.so no longer searches the legacy hwcaps subdirectories. */
const LEGACY_UNTIL = '2.37';

/**
 * The legacy hwcaps subdirectories an image's x86-64 ld.so (glibc 2.26 to
 * 2.36) searches in each directory, after the glibc-hwcaps ones and
 * before the directory itself, in its order. ld.so builds them from its
 * capability names, in this order: the hwcap bits it deems important
 * (`x86_64`, always; `avx512_1` on an Intel CPU with AVX-512 F, CD, BW,
 * DQ and VL), the platform (`haswell` on an Intel CPU with AVX2, FMA,
 * BMI1/2, LZCNT, MOVBE and POPCNT, which the x86-64-v3 level implies;
 * else the kernel's `x86_64`) and `tls`; each subset, the fullest first,
 * is a path of its names from the last to the first
 * (`_dl_important_hwcaps`). `cache`: the order the image's ld.so.cache
 * entries of those subdirectories are preferred in. `vendor` unknown (an older snapshot) counts
 * as not Intel, as on LUMI's AMD nodes. Xeon Phi's `xeon_phi` platform
 * and images older than glibc 2.26 are not modelled: none.
 */
export function legacyHwcapsSubdirs(
  cpu: { level: X86Level | undefined; vendor: string | undefined },
  imageGlibc: string | null,
): { search: string[]; cache: string[] } {
  if (!imageGlibc || compareVersions(imageGlibc, LEGACY_SINCE) < 0 || compareVersions(imageGlibc, LEGACY_UNTIL) >= 0)
    return { search: [], cache: [] };
  const intel = cpu.vendor === 'GenuineIntel';
  const at = X86_LEVELS.indexOf(cpu.level ?? 'x86-64');
  const names = [
    'x86_64',
    ...(intel && at >= X86_LEVELS.indexOf('x86-64-v4') ? ['avx512_1'] : []),
    intel && at >= X86_LEVELS.indexOf('x86-64-v3') ? 'haswell' : 'x86_64',
    'tls',
  ];
  const search: Array<{ sub: string; count: number; weight: number }> = [];
  for (let mask = (1 << names.length) - 1; mask > 0; mask--) {
    const parts = names.filter((_, i) => mask & (1 << i)).reverse();
    // Off Intel the hwcap and the platform are both x86_64: ld.so tries such a path twice, once is enough.
    const sub = parts.join('/');
    if (!search.some((s) => s.sub === sub)) search.push({ sub, count: parts.length, weight: mask });
  }
  // ldconfig sorts a name's cache entries by how many capabilities their directory names, then by
  // the capability bits (tls above the platform above avx512_1 above x86_64): ld.so takes the first that fits.
  const cache = [...search].sort((a, b) => b.count - a.count || b.weight - a.weight);
  return { search: search.map((s) => s.sub), cache: cache.map((s) => s.sub) };
}
