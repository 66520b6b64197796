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
  throw new InputError(
    'bad-compression',
    `compression ${JSON.stringify(text)} is not one of ${COMPRESSIONS.join(', ')}`,
  );
}

/** Above any machine's memory, and below where mksquashfs's own reading of the number overflows. */
const MAX_MEM_MIB = 16 * 1024 * 1024;

function memMiB(text: string): number {
  const m = /^(\d{1,12})([KMG])$/i.exec(text.trim());
  return m ? Number(m[1]) / { K: 1024, M: 1, G: 1 / 1024 }[m[2].toUpperCase() as 'K' | 'M' | 'G'] : NaN;
}

/**
 * `512M`, `2G`, `65536K`: checked here so mksquashfs never starts on a bad
 * value. With `physicalBytes` (the memory of the host where mksquashfs
 * will run), also mksquashfs's own rule: at most 75 % of it.
 */
export function parseMem(text: string, physicalBytes?: number): string {
  const mib = memMiB(text);
  if (!(mib >= 16 && mib <= MAX_MEM_MIB))
    throw new InputError(
      'bad-mem',
      `mksquashfs memory ${JSON.stringify(text)} is not a size from 16M to 16384G such as 512M or 2G`,
    );
  if (physicalBytes !== undefined && mib > (physicalBytes * 0.75) / 1048576) {
    throw new InputError(
      'bad-mem',
      `mksquashfs memory ${text.trim()} is more than mksquashfs takes here: 75% of this host's ${(physicalBytes / 2 ** 30).toFixed(1)} GiB`,
      { hint: 'give less with --mksquashfs-mem, e.g. 1G' },
    );
  }
  const m = /^(\d+)([KMG])$/i.exec(text.trim())!;
  return `${m[1]}${m[2].toUpperCase()}`;
}
