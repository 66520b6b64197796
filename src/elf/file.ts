/**
 * Reading an ELF file on disk: only its headers and the few ranges the
 * dynamic linker's view needs, through positioned reads (never the whole
 * file).
 */
import { promises as fs } from 'node:fs';
import { ELF_HEAD, isElfMagic, parseElf, type ElfInfo, type ElfSource } from './format';

/** An ElfSource over an open file. */
export function handleSource(fh: fs.FileHandle, size: number): ElfSource {
  return {
    size,
    read: async (offset, length) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    },
  };
}

/** The ELF facts of an open regular file; undefined when it is not ELF. */
export async function readElfHandle(fh: fs.FileHandle, size: number): Promise<ElfInfo | undefined> {
  const src = handleSource(fh, size);
  if (size < 4 || !isElfMagic(await src.read(0, Math.min(ELF_HEAD, size)))) return undefined;
  return parseElf(src);
}

/** The ELF facts of a file; undefined when it is not ELF. */
export async function readElfFile(file: string): Promise<ElfInfo | undefined> {
  const fh = await fs.open(file, 'r');
  try {
    return await readElfHandle(fh, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}
