/**
 * An image's files from its squashfs, read in place with sifkit's own
 * reader (squashfs/): one walk of the inode and directory tables (what
 * `unsquashfs -l` reads), and of each ELF candidate only the blocks its
 * ELF header, program headers, dynamic segment, string table and version
 * sections lie in. A hard link's file is read once.
 */
import { throwIfAborted } from '../errors';
import { ElfError, ELF_HEAD, isElfMagic, parseElf, type ElfInfo } from '../elf/format';
import type { Squashfs } from '../squashfs/format';
import type { ImageFiles, ViewEntry } from './linker';
import { LD_CACHE, MAX_LD_CACHE, elfCandidate, isLdconf, ldCacheOf } from './select';

/** ld.so.conf files are a few lines: more than this is not one. */
const MAX_TEXT = 1 << 20;

export async function squashImageFiles(
  sq: Squashfs,
  opts: { signal?: AbortSignal; warn?: (line: string) => void; name: string },
): Promise<Omit<ImageFiles, 'env'>> {
  const entries = new Map<string, ViewEntry>();
  const ldconf = new Map<string, string>();
  const read = new Map<number, ElfInfo | undefined>();
  let ldCache: ImageFiles['ldCache'];
  let n = 0;
  for await (const { path, inode: i } of sq.walk()) {
    if ((++n & 1023) === 0) throwIfAborted(opts.signal);
    if (i.kind === 'dir') entries.set(path, { kind: 'dir', origin: 'image' });
    else if (i.kind === 'link') entries.set(path, { kind: 'link', link: i.target, origin: 'image' });
    else if (i.kind === 'file') {
      if (isLdconf(path) && i.size <= MAX_TEXT)
        ldconf.set(path, (await sq.fileSource(i).read(0, i.size)).toString('utf8'));
      if (path === LD_CACHE && i.size <= MAX_LD_CACHE)
        ldCache = ldCacheOf(await sq.fileSource(i).read(0, i.size), opts.name, opts.warn);
      let elf: ElfInfo | undefined;
      if (elfCandidate(path, i.mode, i.size)) {
        if (read.has(i.inode)) elf = read.get(i.inode);
        else {
          const src = sq.fileSource(i);
          try {
            if (isElfMagic(await src.read(0, Math.min(ELF_HEAD, i.size)))) elf = await parseElf(src);
          } catch (e) {
            if (!(e instanceof ElfError)) throw e;
            opts.warn?.(`${opts.name}: ${path}: ${e.message}; not checked`);
          }
          read.set(i.inode, elf);
        }
      }
      entries.set(path, elf ? { kind: 'file', elf, origin: 'image' } : { kind: 'file', origin: 'image' });
    }
  }
  return { entries, ldconf, ldCache };
}
