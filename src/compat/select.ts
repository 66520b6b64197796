/**
 * Which of an image's files the linker check reads, whatever reads them
 * (sifkit's squashfs reader, unsquashfs, an engine's export). Pure.
 */
import { ElfError } from '../elf/format';
import { parseLdCache, type LdCacheEntry } from '../elf/ldcache';

/** The dynamic linker's cache in an image. */
export const LD_CACHE = '/etc/ld.so.cache';
/** Real caches are well under a megabyte; more is not one. */
export const MAX_LD_CACHE = 64 << 20;

/** The image's cache entries; undefined (and one warning) when it is unreadable, so ld.so.conf stands in. */
export function ldCacheOf(bytes: Buffer, image: string, warn?: (line: string) => void): LdCacheEntry[] | undefined {
  try {
    return parseLdCache(bytes);
  } catch (e) {
    if (!(e instanceof ElfError)) throw e;
    warn?.(`${image}: ${LD_CACHE}: ${e.message}; its ld.so.conf directories stand in for it`);
    return undefined;
  }
}

/** Whether a file name looks like a shared library's. */
export function libraryName(name: string): boolean {
  return /\.so(\.|$)/.test(name);
}

/** ld.so.conf and what it includes: the text ldconfig reads. */
export function isLdconf(p: string): boolean {
  return p === '/etc/ld.so.conf' || /^\/etc\/ld\.so\.conf\.d\/[^/]+$/.test(p);
}

/** Which regular files to read: libraries by name, anything executable. */
export function elfCandidate(p: string, mode: number, size: number): boolean {
  return size >= 52 && (libraryName(p.slice(p.lastIndexOf('/') + 1)) || (mode & 0o111) !== 0);
}
