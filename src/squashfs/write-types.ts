/**
 * What the squashfs writer (`write.ts`) is given: the tree, its files' data
 * (references to blocks already written, or bytes), where to write, and how.
 */

export interface WAttrs {
  /** Permission bits only (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds, u32. */
  mtime: number;
  /** Full names ("user.x", "trusted.x", "security.x"); other namespaces are skipped, as mksquashfs does. */
  xattrs?: Array<[name: string, value: Buffer]>;
}

/** A regular file's data already in the partition; offsets from the partition start (where the superblock goes). */
export interface DataRef {
  blocksStart: number;
  /** On-disk size words: bit 24 = stored uncompressed; 0 = a sparse block. */
  blocks: number[];
  /** `size`: the fragment block's on-disk word, bit 24 included. */
  fragment?: { start: number; size: number; offset: number };
}

export interface WFile {
  attrs: WAttrs;
  size: number;
  /** A reference to blocks in the partition, or the bytes themselves (small files the caller adds). */
  data: DataRef | Buffer;
}

export type WNode =
  | { kind: 'dir'; attrs: WAttrs; children: Map<string, WNode> }
  /** The same WFile under several names is one inode with that many links. */
  | { kind: 'file'; file: WFile }
  | { kind: 'symlink'; attrs: WAttrs; target: string }
  /** `rdev`: as the reader decodes it (the kernel's old encoding). */
  | { kind: 'char' | 'block'; attrs: WAttrs; rdev: number }
  | { kind: 'fifo' | 'socket'; attrs: WAttrs };

/** Positioned writes at absolute file offsets. */
export interface WriteTarget {
  write(buf: Buffer, position: number): Promise<void>;
}

export interface WriteOptions {
  /** Absolute file offset of the superblock. */
  partitionStart: number;
  /** First free byte, relative to partitionStart: Buffer files' blocks, then the tables, go from here. */
  dataEnd: number;
  blockSize: number;
  compression: 'gzip';
  /** The superblock's time, seconds. */
  mkfsTime: number;
  root: Extract<WNode, { kind: 'dir' }>;
  /** Write the export table (NFS export by inode number); default true, as mksquashfs does for a directory. */
  exportTable?: boolean;
  /**
   * Store every metadata block uncompressed, as `mksquashfs -noI -noId -noX -noF` does: for comparing
   * tables with mksquashfs's byte for byte (node's zlib deflates to other bytes than squashfs-tools').
   */
  uncompressedMetadata?: boolean;
}
