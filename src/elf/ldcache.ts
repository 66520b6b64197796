/**
 * glibc's /etc/ld.so.cache (the `glibc-ld.so.cache1.1` format ldconfig
 * has written since glibc 2.32, alone or after the old `ld.so-1.7.0`
 * table), read as ld.so reads it: for a library name, the path of the
 * first entry whose flags fit the object's ELF class and machine
 * (`_dl_cache_check_flags`; libc5's flag 1 is not looked for). An entry
 * of a glibc-hwcaps subdirectory (hwcap word with the extension bit) is
 * kept with its subdirectory, taken from its path as ldconfig made it:
 * ld.so prefers it when the CPU has that level (`cacheLookup`). A legacy
 * hwcaps entry (glibc before 2.37: `tls/`, `haswell/`, `x86_64/`...) is
 * kept the same way with its subdirectory. Pure.
 */
import { ElfError } from './format';

const NEW_MAGIC = 'glibc-ld.so.cache1.1';
const OLD_MAGIC = 'ld.so-1.7.0';
const HEADER = 48;
const ENTRY = 24;

export interface LdCacheEntry {
  name: string;
  path: string;
  flags: number;
  /** `glibc-hwcaps/x86-64-v3`, `tls/haswell`...: the subdirectory of a hwcaps entry. */
  hwcaps?: string;
}

/** The legacy hwcaps subdirectory ldconfig took an entry's bits from: its x86 capability and platform names. */
const LEGACY_SUBDIR =
  /\/((?:tls|haswell|xeon_phi|avx512_1|x86_64)(?:\/(?:tls|haswell|xeon_phi|avx512_1|x86_64))*)\/[^/]+$/;

/** Bit 62 of an entry's hwcap word: a glibc-hwcaps entry (DL_CACHE_HWCAP_EXTENSION). */
const HWCAP_EXTENSION = 1n << 62n;

/** The flags ld.so accepts for an object of this class and machine (its _DL_CACHE_DEFAULT_ID), or undefined if unknown. */
export function cacheFlagsFor(elf: { bits: 32 | 64; machine: number }): number | undefined {
  const LIBC6 = 0x0003;
  if (elf.machine === 62) return elf.bits === 64 ? LIBC6 | 0x0300 : LIBC6 | 0x0800; // x86-64, x32
  if (elf.machine === 183) return LIBC6 | 0x0a00; // AArch64
  if (elf.machine === 3) return LIBC6; // i386
  return undefined;
}

function cString(b: Buffer, at: number): string {
  const end = b.indexOf(0, at);
  if (at >= b.length || end < 0) throw new ElfError(`ld.so.cache: string offset ${at} outside the file`);
  return b.toString('utf8', at, end);
}

/** The entries of a cache file, in its order (the order ld.so searches). */
export function parseLdCache(buf: Buffer): LdCacheEntry[] {
  let at = 0;
  if (buf.toString('latin1', 0, OLD_MAGIC.length) === OLD_MAGIC) {
    // The old table first (12-byte entries), then the new header, 8-aligned.
    const n = buf.length >= 16 ? buf.readUInt32LE(12) : 0;
    at = Math.ceil((16 + n * 12) / 8) * 8;
  }
  if (buf.length < at + HEADER || buf.toString('latin1', at, at + NEW_MAGIC.length) !== NEW_MAGIC)
    throw new ElfError(`not a ${NEW_MAGIC} file`);
  const base = buf.subarray(at);
  const n = base.readUInt32LE(20);
  if (HEADER + n * ENTRY > base.length) throw new ElfError(`ld.so.cache: ${n} entries in ${base.length} bytes`);
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = HEADER + i * ENTRY;
    const hwcap = base.readBigUInt64LE(o + 16);
    const entry = {
      flags: base.readInt32LE(o),
      name: cString(base, base.readUInt32LE(o + 4)),
      path: cString(base, base.readUInt32LE(o + 8)),
    };
    if (hwcap === 0n) out.push(entry);
    else {
      const sub =
        hwcap & HWCAP_EXTENSION
          ? /\/(glibc-hwcaps\/[^/]+)\/[^/]+$/.exec(entry.path)?.[1]
          : LEGACY_SUBDIR.exec(entry.path)?.[1];
      if (sub) out.push({ ...entry, hwcaps: sub });
    }
  }
  return out;
}

/**
 * name -> path per accepted flags, as ld.so's cache search finds it: the
 * entry of the first of `hwcaps` (the subdirectories the CPU supports,
 * best first) that has one, else the first plain entry.
 */
export function cacheLookup(
  entries: LdCacheEntry[],
  hwcaps: string[] = [],
): (name: string, flags: number) => string | undefined {
  const index = new Map<string, { path: string; rank: number }>();
  for (const e of entries) {
    const rank = e.hwcaps === undefined ? hwcaps.length : hwcaps.indexOf(e.hwcaps);
    if (rank < 0) continue; // a level this CPU lacks
    const k = `${e.flags}\0${e.name}`;
    const had = index.get(k);
    if (!had || rank < had.rank) index.set(k, { path: e.path, rank });
  }
  return (name, flags) => index.get(`${flags}\0${name}`)?.path;
}
