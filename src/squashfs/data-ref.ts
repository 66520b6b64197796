/**
 * A file's data in an image sifkit's reader opened, as the writer takes
 * it: its blocks and its tail's fragment block, moved by `shift` bytes.
 * Copy an image's data (from byte 96 up to its inode table) to offset X
 * of the partition and its files' references move by X - 96. Pure.
 */
import type { FileInode, Squashfs } from './format';
import { NO_FRAGMENT } from './layout';
import type { DataRef } from './write-types';

export function dataRefOf(fs: Squashfs, f: FileInode, shift = 0): DataRef {
  const ref: DataRef = { blocksStart: f.blocksStart + shift, blocks: [...f.blocks] };
  if (f.fragment !== NO_FRAGMENT) {
    const { start, size } = fs.fragment(f.fragment);
    ref.fragment = { start: start + shift, size, offset: f.fragmentOffset };
  }
  return ref;
}
