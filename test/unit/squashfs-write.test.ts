/**
 * The squashfs writer's pure parts: metadata blocks and their references,
 * directory headers and index points, and whole file systems written to
 * memory (files given as bytes) and read back by sifkit's reader; what it
 * refuses. Real images and squashfs-tools: test/integration/squashfs-write.
 */
import { inflateSync } from 'node:zlib';
import { Squashfs, type ByteSource, type DirInode, type FileInode } from '../../src/squashfs/format';
import { InputError } from '../../src/errors';
import { DirListing } from '../../src/squashfs/write-dir';
import { MetaStream } from '../../src/squashfs/write-meta';
import { writeSquashfs, type WAttrs, type WFile, type WNode, type WriteOptions } from '../../src/squashfs/write';

type Dir = Extract<WNode, { kind: 'dir' }>;
const attrs = (over: Partial<WAttrs> = {}): WAttrs => ({ mode: 0o755, uid: 0, gid: 0, mtime: 1_000_000, ...over });
const dir = (entries: Array<[string, WNode]> = [], a = attrs()): Dir => ({
  kind: 'dir',
  attrs: a,
  children: new Map(entries),
});
const file = (data: Buffer | string, a = attrs({ mode: 0o644 })): WFile => {
  const b = Buffer.from(data);
  return { attrs: a, size: b.length, data: b };
};

/** A file in memory, with the order and place of every write. */
function memory() {
  let buf = Buffer.alloc(0);
  const writes: Array<{ at: number; length: number }> = [];
  return {
    writes,
    get bytes() {
      return buf;
    },
    write: (b: Buffer, at: number) => {
      if (at + b.length > buf.length) buf = Buffer.concat([buf, Buffer.alloc(at + b.length - buf.length)]);
      b.copy(buf, at);
      writes.push({ at, length: b.length });
      return Promise.resolve();
    },
  };
}

const OPTS = { partitionStart: 0, dataEnd: 96, blockSize: 4096, compression: 'gzip' as const, mkfsTime: 5 };

async function written(root: Dir, opts: Partial<WriteOptions> = {}) {
  const out = memory();
  const res = await writeSquashfs(out, { ...OPTS, root, ...opts });
  const bytes = out.bytes.subarray(opts.partitionStart ?? 0);
  const src: ByteSource = { size: bytes.length, read: (o, n) => Promise.resolve(bytes.subarray(o, o + n)) };
  return { out, res, fs: await Squashfs.open(src) };
}

async function content(fs: Squashfs, f: FileInode): Promise<Buffer> {
  return fs.fileSource(f).read(0, f.size);
}

describe('metadata blocks', () => {
  it('knows where each byte lies: the block it starts in, compressed before it, and the offset', () => {
    const m = new MetaStream();
    expect(m.append(Buffer.alloc(5000, 1))).toEqual({ block: 0, offset: 0 });
    const second = m.append(Buffer.alloc(5000, 2));
    expect(second).toEqual({ block: 0, offset: 5000 });
    const third = m.append(Buffer.alloc(10, 3));
    const bytes = m.finish();
    // The first block (8 KiB of runs) compresses; the second starts where it ends.
    expect(third.block).toBeGreaterThan(2);
    expect(third.block).toBeLessThan(200);
    expect(third.offset).toBe(10000 - 8192);
    const head = bytes.readUInt16LE(0);
    expect(head & 0x8000).toBe(0);
    expect(inflateSync(bytes.subarray(2, 2 + head)).length).toBe(8192);
    expect(bytes.readUInt16LE(third.block) & 0x7fff).toBeGreaterThan(0);
  });

  it('stores a block that does not compress, with the uncompressed bit', () => {
    const m = new MetaStream();
    let x = 1;
    const noise = Buffer.from(Array.from({ length: 300 }, () => (x = (x * 1103515245 + 12345) & 0x7fffffff) >> 23));
    m.append(noise);
    const bytes = m.finish();
    expect(bytes.readUInt16LE(0)).toBe(0x8000 | 300);
    expect(bytes.subarray(2)).toEqual(noise);
  });
});

describe('directory listings', () => {
  const name = (i: number) => Buffer.from(`n${i}`);
  const counts = (b: Buffer) => {
    const out: number[] = [];
    for (let o = 0; o < b.length;) {
      const n = b.readUInt32LE(o) + 1;
      out.push(n);
      o += 12;
      for (let i = 0; i < n; i++) o += 8 + b.readUInt16LE(o + 6) + 1;
    }
    return out;
  };

  it('puts at most 256 entries under one header', () => {
    const l = new DirListing();
    for (let i = 0; i < 600; i++) l.add({ block: 0, offset: i * 32 }, i + 1, name(i), 2);
    expect(counts(l.bytes())).toEqual([256, 256, 88]);
  });

  it('starts a header where the inode block changes and where the number is an int16 away', () => {
    const l = new DirListing();
    l.add({ block: 0, offset: 0 }, 10, name(1), 2);
    l.add({ block: 0, offset: 40 }, 11, name(2), 2);
    l.add({ block: 900, offset: 8 }, 12, name(3), 2);
    l.add({ block: 900, offset: 50 }, 12 + 32767, name(4), 2);
    l.add({ block: 900, offset: 90 }, 12 + 32768, name(5), 2);
    const b = l.bytes();
    expect(counts(b)).toEqual([2, 2, 1]);
    expect(b.readUInt32LE(12 + 16 + 2 * 2 + 4)).toBe(900); // the second header's inode block
    expect(l.index).toEqual([]);
  });

  it('makes an index point where the listing since the last one would pass 8 KiB', () => {
    const l = new DirListing();
    const long = (i: number) => Buffer.from(`${i}`.padStart(200, 'x'));
    for (let i = 0; i < 100; i++) l.add({ block: 0, offset: 0 }, i + 1, long(i), 2);
    const b = l.bytes();
    expect(l.index.length).toBe(2);
    for (const p of l.index) {
      // An index point is a header, and names its first entry.
      const n = b.readUInt16LE(p.index + 12 + 6) + 1;
      expect(b.subarray(p.index + 20, p.index + 20 + n)).toEqual(p.name);
      expect(p.index).toBeLessThanOrEqual(8192 * (l.index.indexOf(p) + 1));
    }
  });
});

describe('a file system written to memory, read back', () => {
  it('holds every inode type, hard links, owners past 16 bits, and the bytes of its files', async () => {
    const big = Buffer.from(Array.from({ length: 3 * 4096 + 100 }, (_, i) => (i * 31) & 0xff));
    const linked = file('three names\n');
    const root = dir([
      ['empty', { kind: 'file', file: file('') }],
      ['big', { kind: 'file', file: file(big, attrs({ uid: 70000, gid: 2 ** 31 })) }],
      ['zeros', { kind: 'file', file: file(Buffer.alloc(2 * 4096 + 1)) }],
      ['a', { kind: 'file', file: linked }],
      [
        'sub',
        dir([
          ['b', { kind: 'file', file: linked }],
          ['deeper', dir([['c', { kind: 'file', file: linked }]])],
        ]),
      ],
      ['link', { kind: 'symlink', attrs: attrs({ mode: 0o777 }), target: 'sub/b' }],
      ['null', { kind: 'char', attrs: attrs(), rdev: (1 << 8) | 3 }],
      ['disk', { kind: 'block', attrs: attrs(), rdev: (8 << 8) | 1 }],
      ['fifo', { kind: 'fifo', attrs: attrs() }],
      ['sock', { kind: 'socket', attrs: attrs({ xattrs: [['user.x', Buffer.from('y')]] }) }],
    ]);
    const { fs, res, out } = await written(root);
    const all = new Map([...fs.walk()].map((e) => [e.path, e.inode]));
    expect(res.inodes).toBe(12);
    expect(all.get('/')?.inode).toBe(12);
    const f = (p: string) => all.get(p) as FileInode;
    expect(await content(fs, f('/big'))).toEqual(big);
    expect(f('/big')).toMatchObject({ uid: 70000, gid: 2 ** 31 });
    expect(await content(fs, f('/zeros'))).toEqual(Buffer.alloc(2 * 4096 + 1));
    expect(f('/zeros').blocks).toEqual([0, 0, 0]);
    expect(f('/empty')).toMatchObject({ size: 0, blocks: [] });
    for (const p of ['/a', '/sub/b', '/sub/deeper/c']) expect(f(p)).toMatchObject({ inode: f('/a').inode, nlink: 3 });
    expect(await content(fs, f('/sub/deeper/c'))).toEqual(Buffer.from('three names\n'));
    expect((all.get('/') as DirInode).nlink).toBe(3);
    expect((all.get('/sub') as DirInode).nlink).toBe(3);
    expect(all.get('/link')).toMatchObject({ kind: 'link', target: 'sub/b' });
    expect(all.get('/null')).toMatchObject({ kind: 'char', rdev: 259 });
    expect(all.get('/disk')).toMatchObject({ kind: 'block', rdev: 2049 });
    expect(all.get('/sock')?.kind).toBe('socket');
    // Inode numbers in tree order (names sorted by bytes), the root last.
    expect([...all].map(([p, i]) => `${p}:${i.inode}`).slice(0, 4)).toEqual(['/:12', '/a:1', '/big:2', '/disk:3']);
    // Padded to 4 KiB; the superblock is the last write.
    expect(out.bytes.length % 4096).toBe(0);
    expect(res.bytesUsed).toBe(fs.sb.bytesUsed);
    expect(out.writes[out.writes.length - 1]).toEqual({ at: 0, length: 96 });
    expect(fs.sb.flags & 0x200).toBe(0); // xattrs present
  });

  it('writes the same bytes for the same tree, whatever order its maps were filled in', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `f${(i * 7919) % 300}-é`);
    const make = (order: string[]) => dir(order.map((n) => [n, { kind: 'file', file: file(n) }] as [string, WNode]));
    const one = await written(make(names));
    const two = await written(make([...names].reverse()));
    expect(two.out.bytes.equals(one.out.bytes)).toBe(true);
    // 300 entries: an extended directory; listed in byte order.
    const listed = [...one.fs.walk()].slice(1).map((e) => e.path.slice(1));
    expect(listed).toEqual([...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  });

  it('writes an empty root, alone', async () => {
    const { fs, res } = await written(dir([], attrs({ mode: 0o1777, xattrs: [['trusted.r', Buffer.from('root')]] })));
    const entries = [...fs.walk()];
    expect(entries.map((e) => e.path)).toEqual(['/']);
    expect(entries[0].inode).toMatchObject({ kind: 'dir', inode: 1, nlink: 2, size: 3, mode: 0o1777 });
    expect(res.inodes).toBe(1);
  });

  it('sits at a partition offset, after the data already there', async () => {
    const { fs, out } = await written(dir([['x', { kind: 'file', file: file('at an offset') }]]), {
      partitionStart: 1000,
      dataEnd: 8192,
    });
    const x = [...fs.walk()][1].inode as FileInode;
    expect(x.blocksStart).toBe(8192);
    expect(await content(fs, x)).toEqual(Buffer.from('at an offset'));
    expect(out.bytes.readUInt32LE(1000)).toBe(0x73717368);
    expect(fs.sb.flags & 0x200).toBe(0x200); // no xattrs
  });

  it('shares one fragment block among the files whose tails lie in it, numbered by position', async () => {
    // Data references into blocks nobody reads here: only the tables are checked.
    const ref = (start: number, offset: number): WFile => ({
      attrs: attrs(),
      size: 4096 + 10,
      data: { blocksStart: 96, blocks: [100], fragment: { start, size: 50, offset } },
    });
    const root = dir([
      ['a', { kind: 'file', file: ref(5000, 0) }],
      ['b', { kind: 'file', file: ref(4000, 0) }],
      ['c', { kind: 'file', file: ref(5000, 10) }],
    ]);
    const { fs } = await written(root, { dataEnd: 6000 });
    const [a, b, c] = [...fs.walk()].slice(1).map((e) => e.inode as FileInode);
    expect(fs.sb.fragments).toBe(2);
    expect([a.fragment, b.fragment, c.fragment]).toEqual([1, 0, 1]);
    expect(fs.fragment(1)).toEqual({ start: 5000, size: 50 });
    expect(c.fragmentOffset).toBe(10);
  });
});

describe('what squashfs cannot hold', () => {
  const refuse = (root: Dir, message: string | RegExp, opts: Partial<WriteOptions> = {}) =>
    expect(writeSquashfs(memory(), { ...OPTS, root, ...opts })).rejects.toThrow(message);
  const one = (name: string) => dir([[name, { kind: 'file', file: file('x') }]]);

  it.each([['a'.repeat(257)], ['a/b'], ['nul\0'], ['.'], ['..'], ['']])('refuses the name %j', async (n) => {
    await refuse(one(n), /cannot be stored/);
  });

  it('accepts a name of 256 bytes', async () => {
    const { fs } = await written(one('é'.repeat(128)));
    expect([...fs.walk()][1].path).toBe(`/${'é'.repeat(128)}`);
  });

  it('refuses more than 65535 distinct uids and gids', async () => {
    const many = dir(
      Array.from({ length: 33000 }, (_, i) => [
        `f${i}`,
        { kind: 'fifo', attrs: attrs({ uid: 2 * i, gid: 2 * i + 1 }) },
      ]),
    );
    await refuse(many, 'more than 65535 distinct uids and gids');
  });

  it('refuses a data reference whose blocks do not match its size', async () => {
    const bad: WFile = { attrs: attrs(), size: 10_000, data: { blocksStart: 96, blocks: [100] } };
    await refuse(dir([['f', { kind: 'file', file: bad }]]), '1 blocks for 10000 bytes (3 expected)');
  });

  it('refuses one fragment block given with two sizes', async () => {
    const f = (size: number): WNode => ({
      kind: 'file',
      file: {
        attrs: attrs(),
        size: 5,
        data: { blocksStart: 0, blocks: [], fragment: { start: 200, size, offset: 0 } },
      },
    });
    await refuse(
      dir([
        ['a', f(50)],
        ['b', f(51)],
      ]),
      'fragment block at 200 given with sizes 50 and 51',
    );
  });

  it('refuses a directory under two names, and a bad block size', async () => {
    const d = dir();
    await refuse(
      dir([
        ['a', d],
        ['b', d],
      ]),
      'the same dir under two names',
    );
    await refuse(dir(), 'block size 5000', { blockSize: 5000 });
  });

  it('refuses xattrs the kernel would not take, and skips namespaces squashfs has none for', async () => {
    const withX = (x: Array<[string, Buffer]>) => dir([], attrs({ xattrs: x }));
    await refuse(withX([['user.' + 'n'.repeat(251), Buffer.from('v')]]), /cannot be stored/);
    await refuse(
      withX([
        ['user.a', Buffer.from('1')],
        ['user.a', Buffer.from('2')],
      ]),
      'xattr user.a given twice',
    );
    const { fs } = await written(withX([['system.posix_acl_access', Buffer.from('acl')]]));
    expect(fs.sb.flags & 0x200).toBe(0x200);
  });

  it('says what it refuses as an InputError', async () => {
    await expect(writeSquashfs(memory(), { ...OPTS, root: one('a/b') })).rejects.toBeInstanceOf(InputError);
  });
});
