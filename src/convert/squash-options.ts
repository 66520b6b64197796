/**
 * How the partition is squashed: the compressor and mksquashfs's memory.
 * gzip is the default because every apptainer and singularity reads it;
 * the others need a runtime whose squashfuse or kernel has them. Pure.
 */
import { InputError } from '../errors';

export const COMPRESSIONS = ['gzip', 'zstd', 'lz4', 'xz'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/**
 * mksquashfs takes a quarter of physical memory by default (6 GiB on a
 * 24 GiB build host), whatever the image; a bound keeps a build host that
 * converts several images at once out of swap. It refuses less than 16M.
 */
export const DEFAULT_MKSQUASHFS_MEM = '1G';

export function parseCompression(text: string): Compression {
  if ((COMPRESSIONS as readonly string[]).includes(text)) return text as Compression;
  throw new InputError('bad-compression', `compression ${JSON.stringify(text)} is not one of ${COMPRESSIONS.join(', ')}`);
}

/** `512M`, `2G`, `65536K`: checked here so mksquashfs never starts on a bad value. */
export function parseMem(text: string): string {
  const m = /^(\d+)([KMG])$/i.exec(text.trim());
  const mib = m ? Number(m[1]) / { K: 1024, M: 1, G: 1 / 1024 }[m[2].toUpperCase() as 'K' | 'M' | 'G'] : NaN;
  if (!m || !(mib >= 16)) throw new InputError('bad-mem', `mksquashfs memory ${JSON.stringify(text)} is not a size of at least 16M such as 512M or 2G`);
  return `${m[1]}${m[2].toUpperCase()}`;
}
