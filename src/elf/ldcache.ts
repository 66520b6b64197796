/**
 * glibc's /etc/ld.so.cache (the `glibc-ld.so.cache1.1` format ldconfig
 * has written since glibc 2.32, alone or after the old `ld.so-1.7.0`
 * table), read as ld.so reads it: for a library name, the path of the
 * first entry whose flags fit the object's ELF class and machine
 * (`_dl_cache_check_flags`; libc5's flag 1 is not looked for). Entries
 * with hwcaps (glibc-hwcaps subdirectories, legacy hwcaps) are left out:
 * which of them ld.so takes depends on the CPU it runs on.
 * Pure.
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
}

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
    if (base.readBigUInt64LE(o + 16) !== 0n) continue;
    out.push({
      flags: base.readInt32LE(o),
      name: cString(base, base.readUInt32LE(o + 4)),
      path: cString(base, base.readUInt32LE(o + 8)),
    });
  }
  return out;
}

/** name -> path per accepted flags, first entry winning, as ld.so's search finds it. */
export function cacheLookup(entries: LdCacheEntry[]): (name: string, flags: number) => string | undefined {
  const index = new Map<string, string>();
  for (const e of entries) {
    const k = `${e.flags}\0${e.name}`;
    if (!index.has(k)) index.set(k, e.path);
  }
  return (name, flags) => index.get(`${flags}\0${name}`);
}
