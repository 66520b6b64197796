import { readInode, type InodeTable } from '../../src/squashfs/inode';
import { SquashfsError, type Superblock } from '../../src/squashfs/layout';

/** An inode table that holds only `bytes`: a window ends where they end, as at the end of a real table. */
function tableOf(bytes: Buffer): InodeTable {
  const sb = { inodeTable: 0, directoryTable: 1 << 20, blockSize: 131072 } as Superblock;
  return {
    sb,
    window: (c, n) => bytes.subarray(c.offset, c.offset + n),
    take: (c, n) => {
      const b = bytes.subarray(c.offset, c.offset + n);
      c.offset += n;
      return b;
    },
    id: () => 0,
  };
}

function header(type: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt16LE(type, 0);
  h.writeUInt16LE(0o755, 2);
  return h;
}

describe('an inode read from the table', () => {
  it('decodes a whole basic directory inode', () => {
    const body = Buffer.alloc(16);
    body.writeUInt32LE(7, 0); // start
    body.writeUInt32LE(2, 4); // nlink
    body.writeUInt16LE(3, 8); // size
    body.writeUInt16LE(9, 10); // offset
    expect(readInode(tableOf(Buffer.concat([header(1), body])), 0)).toMatchObject({
      kind: 'dir',
      start: 7,
      nlink: 2,
      size: 3,
      offset: 9,
    });
  });

  // Each type's fixed part counts from the inode's start: one whose header is
  // whole but whose body is cut short is refused, not read past its end.
  it.each([
    ['a basic directory', 1, 16],
    ['an extended directory', 8, 24],
    ['a basic file', 2, 16],
    ['an extended file', 9, 40],
    ['a symbolic link', 3, 8],
    ['a device', 4, 8],
    ['a fifo', 6, 4],
  ])('refuses %s inode cut short at the end of the table', (_what, type, body) => {
    const cut = Buffer.concat([header(type), Buffer.alloc(body - 1)]);
    expect(() => readInode(tableOf(cut), 0)).toThrow(SquashfsError);
    expect(() => readInode(tableOf(cut), 0)).toThrow('an inode is cut short');
  });
});
