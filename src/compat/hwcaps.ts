/**
 * glibc-hwcaps (glibc 2.33 and later): before each directory of its
 * search path, ld.so tries that directory's `glibc-hwcaps/<level>/`
 * subdirectories for the x86-64 micro-architecture levels the CPU
 * supports, the highest first. The levels are the x86-64 psABI's, read
 * here from the CPU flags Linux reports in /proc/cpuinfo. Pure.
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
