/**
 * A squashfs file system inside a file (a SIF's partition, or a bare
 * image) read through positioned reads of one open handle.
 */
import { promises as fs } from 'node:fs';
import { Squashfs, type ByteSource } from './format';

/** Opens the file system at `offset` of `file`; `close` when done. */
export async function openSquashfs(file: string, offset = 0): Promise<{ fs: Squashfs; close: () => Promise<void> }> {
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size - offset;
    const src: ByteSource = {
      size,
      read: async (at, length) => {
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset + at);
        return buf.subarray(0, bytesRead);
      },
    };
    return { fs: await Squashfs.open(src), close: () => fh.close() };
  } catch (e) {
    await fh.close();
    throw e;
  }
}
