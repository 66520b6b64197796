/**
 * An image's files from its squashfs, read in place with sifkit's own
 * reader (squashfs/): one walk of the inode and directory tables (what
 * `unsquashfs -l` reads), and of each ELF candidate only the blocks its
 * ELF header, program headers, dynamic segment, string table and version
 * sections lie in. A hard link's file is read once.
 */
import { setImmediate } from 'node:timers/promises';
import { throwIfAborted } from '../errors';
import { ElfError, ELF_HEAD, isElfMagic, parseElf, type ElfInfo } from '../elf/format';
import type { FileInode, Squashfs } from '../squashfs/format';
import type { ImageFiles, ViewEntry } from './view';
import { LD_CACHE, MAX_LD_CACHE, elfCandidate, isLdconf, ldCacheOf } from './select';

/** ld.so.conf files are a few lines: more than this is not one. */
const MAX_TEXT = 1 << 20;

export async function squashImageFiles(
  sq: Squashfs,
  opts: { signal?: AbortSignal; warn?: (line: string) => void; name: string },
): Promise<Omit<ImageFiles, 'env'>> {
  const entries = new Map<string, ViewEntry>();
  const ldconf = new Map<string, string>();
  let ldCache: ImageFiles['ldCache'];
  /** ELF candidates by inode number (a hard link's file once), with the paths that name them. */
  const candidates = new Map<number, { inode: FileInode; paths: string[] }>();
  let n = 0;
  for (const { path, inode: i } of sq.walk()) {
    if ((++n & 4095) === 0) {
      // The walk is synchronous: let a Ctrl-C's abort in now and then on an image of millions of files.
      await setImmediate();
      throwIfAborted(opts.signal);
    }
    if (i.kind === 'dir') entries.set(path, { kind: 'dir', origin: 'image' });
    else if (i.kind === 'link') entries.set(path, { kind: 'link', link: i.target, origin: 'image' });
    else if (i.kind === 'file') {
      if (isLdconf(path) && i.size <= MAX_TEXT)
        ldconf.set(path, (await sq.fileSource(i).read(0, i.size)).toString('utf8'));
      if (path === LD_CACHE && i.size <= MAX_LD_CACHE)
        ldCache = ldCacheOf(await sq.fileSource(i).read(0, i.size), opts.name, opts.warn);
      entries.set(path, { kind: 'file', origin: 'image' });
      if (elfCandidate(path, i.mode, i.size)) {
        const c = candidates.get(i.inode);
        if (c) c.paths.push(path);
        else candidates.set(i.inode, { inode: i, paths: [path] });
      }
    }
  }
  // Read in the order the bytes lie: files with blocks, then tails by fragment block, so each
  // fragment block is decoded once, as far as its last candidate reaches (most ELF files are small).
  const order = [...candidates.values()].sort((a, b) => key(a.inode) - key(b.inode));
  const reach = sq.fragmentReach(order.map((c) => c.inode));
  for (const { inode: i, paths } of order) {
    if ((++n & 63) === 0) throwIfAborted(opts.signal);
    const src = sq.fileSource(i, reach);
    let elf: ElfInfo | undefined;
    try {
      if (isElfMagic(await src.read(0, Math.min(ELF_HEAD, i.size)))) elf = await parseElf(src);
    } catch (e) {
      if (!(e instanceof ElfError)) throw e;
      opts.warn?.(`${opts.name}: ${paths[0]}: ${e.message}; not checked`);
    }
    // Setting a path again keeps its place in the map (the walk's order).
    if (elf) for (const p of paths) entries.set(p, { kind: 'file', elf, origin: 'image' });
  }
  return { entries, ldconf, ldCache };
}

/** Files with blocks first (by where they start), then tails in fragments by fragment block. */
function key(f: FileInode): number {
  return f.blocks.length ? f.blocksStart - Number.MAX_SAFE_INTEGER : f.fragment;
}
