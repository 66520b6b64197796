/**
 * The squashfs writer against real squashfs-tools. A seeded tar (every
 * entry type, hard links of three names, xattrs, uids past 16 bits, odd
 * names, directories of 300 and 700 entries) becomes an image through
 * `mksquashfs -tar`; sifkit's reader reads it; the tree it read, re-using
 * the image's data blocks and fragment blocks, is written by the writer
 * into the same file, after the old tables, its superblock over the old
 * one. The result is compared with the original: `unsquashfs -lln`
 * listings, and both extracted by unsquashfs (as root: owners, xattrs)
 * and described file for file (mode, owner, mtime, size, sha256, target,
 * device number, xattrs, nlink, hard-link groups). The reader reads it
 * back too. Files given as bytes, a socket, and the export table on and
 * off; several random trees (seeded; the seed is printed).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { seeded } from '../../bench/torture';
import { kernelMounts, withMounted } from '../support/kernel-mount';
import { openSquashfs } from '../../src/squashfs/file';
import { writeSquashfs, type WNode, type WriteTarget } from '../../src/squashfs/write';
import { generateTar, manifest } from '../support/squashfs-gen';
import { listingLine } from '../support/squashfs-listing';
import { treeFromImage } from '../support/squashfs-tree';

jest.setTimeout(600_000);

const SEED = Number(process.env.SIFKIT_TEST_SEED ?? Date.now() % 1_000_000);
/** SIFKIT_TEST_SCALE=10: random trees ten times larger. */
const SCALE = Number(process.env.SIFKIT_TEST_SCALE ?? 1);
let work: string;

beforeAll(async () => {
  console.log(`squashfs-write seed ${SEED} (SIFKIT_TEST_SEED=${SEED} repeats it)`);
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-sqw-'));
});
// SIFKIT_TEST_KEEP=1 keeps the images for a look.
afterAll(() => (process.env.SIFKIT_TEST_KEEP ? undefined : fs.rm(work, { recursive: true, force: true })));

async function fileTarget(file: string): Promise<WriteTarget & { close(): Promise<void> }> {
  const fh = await fs.open(file, 'r+');
  return {
    write: async (buf, position) => {
      await fh.write(buf, 0, buf.length, position);
    },
    close: () => fh.close(),
  };
}

const unsq = (...args: string[]) => execFileSync('unsquashfs', args, { maxBuffer: 1 << 28 }).toString();

/** Makes an image of a seeded tar; returns its path, its tree as read, and the xattrs given. */
async function original(name: string, seed: number, randomEntries: number, fixed: boolean, args: string[] = []) {
  const gen = await generateTar(seeded(seed), { randomEntries, fixed });
  const img = path.join(work, `${name}.img`);
  execFileSync('mksquashfs', ['-', img, '-tar', '-noappend', '-quiet', '-no-progress', ...args], { input: gen.tar });
  return { img, xattrs: gen.xattrs };
}

/** Writes `root` into a copy of `img` after its tables; returns the copy. */
async function rewrite(img: string, root: WNode & { kind: 'dir' }, exportTable?: boolean) {
  const copy = `${img}.${exportTable === false ? 'noexp' : 'new'}`;
  await fs.copyFile(img, copy);
  const { fs: sq, close } = await openSquashfs(img);
  const oldUsed = sq.sb.bytesUsed;
  await close();
  const target = await fileTarget(copy);
  const t0 = process.hrtime.bigint();
  const res = await writeSquashfs(target, {
    partitionStart: 0,
    dataEnd: Math.ceil(oldUsed / 4096) * 4096,
    blockSize: 131072,
    compression: 'gzip',
    mkfsTime: 1_700_000_000,
    root,
    exportTable,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await target.close();
  return { copy, res, ms };
}

/** What squashfs-tools extract, described file for file. */
function extracted(img: string, dest: string) {
  unsq('-d', dest, '-no-progress', img);
  return manifest(dest);
}

async function readerView(img: string) {
  const { fs: sq, close } = await openSquashfs(img);
  try {
    const lines: string[] = [];
    const groups = new Map<number, string[]>();
    for (const e of sq.walk()) {
      lines.push(listingLine(e));
      if (e.inode.kind === 'file') groups.set(e.inode.inode, [...(groups.get(e.inode.inode) ?? []), e.path]);
    }
    return { lines, groups: [...groups.values()].map((g) => g.join(' ')).sort(), sb: sq.sb };
  } finally {
    await close();
  }
}

async function roundTrip(name: string, seed: number, randomEntries: number, fixed: boolean) {
  const { img, xattrs } = await original(name, seed, randomEntries, fixed);
  const { fs: sq, close } = await openSquashfs(img);
  const root = treeFromImage(sq, xattrs);
  await close();
  const { copy, res, ms } = await rewrite(img, root);
  // The listing squashfs-tools print (sizes of directories included: the listings are laid out as mksquashfs lays them).
  expect(unsq('-lln', '-UTC', copy)).toBe(unsq('-lln', '-UTC', img));
  const before = extracted(img, path.join(work, `${name}-a`));
  const after = extracted(copy, path.join(work, `${name}-b`));
  expect(after).toEqual(before);
  const [r0, r1] = [await readerView(img), await readerView(copy)];
  expect(r1.lines).toEqual(r0.lines);
  expect(r1.groups).toEqual(r0.groups);
  expect(r1.sb.inodes).toBe(r0.sb.inodes);
  expect(res.bytesUsed).toBe(r1.sb.bytesUsed);
  expect((await fs.stat(copy)).size % 4096).toBe(0);
  return { before, res, ms, img, copy, root };
}

const itMounted = kernelMounts('squashfs-write') ? it : it.skip;

/** The manifest of an image as the Linux kernel reads it (its own nlink, inode numbers, lookups by the index). */
async function mounted(img: string, at: string) {
  return withMounted(img, 0, at, () => manifest(at));
}

describe('the squashfs writer, over the blocks of a mksquashfs image', () => {
  it('writes a file system file for file what mksquashfs made (every inode type, xattrs, links, long listings)', async () => {
    const { before, res, ms } = await roundTrip('fixed', SEED, 200, true);
    // The cases are there: xattrs in three namespaces, three names of one file, owners past 16 bits.
    expect(before['/links/a'].xattrs).toEqual([
      ['security.s', Buffer.from('sec').toString('hex')],
      ['trusted.t', Buffer.from('trusted value').toString('hex')],
      ['user.mime', Buffer.from('text/plain').toString('hex')],
    ]);
    expect(before['/links/sub/c']).toMatchObject({ nlink: 3, same: '/links/a' });
    expect(Object.values(before).some((e) => (e.uid as number) > 65535)).toBe(true);
    expect(before['/special/null'].xattrs).toEqual([['trusted.dev', Buffer.from('c').toString('hex')]]);
    console.log(`fixed tree: ${res.inodes} inodes, tables written in ${ms.toFixed(0)} ms`);
  });

  it('reads back the directory layouts: 300 entries (two headers, indexed), 700 (a listing past 64 KiB)', async () => {
    const { img } = await original('dirs', SEED, 0, true);
    const { copy } = await rewrite(
      img,
      await (async () => {
        const { fs: sq, close } = await openSquashfs(img);
        const r = treeFromImage(sq);
        await close();
        return r;
      })(),
    );
    const { fs: sq, close } = await openSquashfs(copy);
    try {
      const dirs = new Map([...sq.walk()].filter((e) => e.inode.kind === 'dir').map((e) => [e.path, e.inode]));
      const huge = dirs.get('/huge');
      expect(huge?.kind === 'dir' && huge.size).toBeGreaterThan(65535);
      const many = dirs.get('/many');
      expect(many?.kind === 'dir' && sq.list(many).length).toBe(300);
      // Lookups by name go through the index: unsquashfs extracting one file of /huge finds it.
      const one = `huge/00650${'h'.repeat(95)}`;
      expect(unsq('-lln', copy, one)).toContain(one);
    } finally {
      await close();
    }
  });

  itMounted(
    'is read by the Linux kernel as it reads the original (directory nlink, lookups through the index)',
    async () => {
      const { img, xattrs } = await original('kernel', SEED, 300, true);
      const { fs: sq, close } = await openSquashfs(img);
      const root = treeFromImage(sq, xattrs);
      await close();
      const { copy } = await rewrite(img, root);
      const before = await mounted(img, path.join(work, 'kernel-a'));
      const after = await mounted(copy, path.join(work, 'kernel-b'));
      expect(after).toEqual(before);
      expect(before['/huge']).toMatchObject({ nlink: 2 });
      expect(Object.keys(before).length).toBeGreaterThan(1300);
    },
  );

  it('writes a file system of its own files at an offset of a larger file, as in a SIF', async () => {
    const file = path.join(work, 'partition.bin');
    await fs.writeFile(file, Buffer.alloc(65536, 0xee)); // what lies before the partition, left alone
    const rand = seeded(SEED + 3);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    const attrs = { mode: 0o644, uid: 1, gid: 2, mtime: 1_234_567_890 };
    const files = new Map<string, Buffer>([
      ['a', bytes(10)],
      ['b', bytes(200_000)],
      ['c', Buffer.alloc(0)],
    ]);
    const root: WNode & { kind: 'dir' } = { kind: 'dir', attrs: { ...attrs, mode: 0o755 }, children: new Map() };
    for (const [n, b] of files) root.children.set(n, { kind: 'file', file: { attrs, size: b.length, data: b } });
    const target = await fileTarget(file);
    const opts = { partitionStart: 65536, dataEnd: 96, blockSize: 131072, compression: 'gzip' as const };
    const res = await writeSquashfs(target, { ...opts, mkfsTime: 1, root });
    await target.close();
    const all = await fs.readFile(file);
    expect(all.subarray(0, 65536).equals(Buffer.alloc(65536, 0xee))).toBe(true);
    expect(all.length).toBe(65536 + Math.ceil(res.bytesUsed / 4096) * 4096);
    const out = path.join(work, 'partition-x');
    unsq('-o', '65536', '-d', out, '-no-progress', file);
    for (const [n, b] of files) expect((await fs.readFile(path.join(out, n))).equals(b)).toBe(true);
    expect(unsq('-o', '65536', '-lln', '-UTC', file)).toMatch(
      /-rw-r--r-- 1\/2 +200000 2009-02-13 23:31 squashfs-root\/b\n/,
    );
  });

  it('writes one file system over the data of two images copied into one partition (as conversion will)', async () => {
    const layers = [await original('layer1', SEED + 11, 300, false), await original('layer2', SEED + 12, 300, true)];
    const partition = path.join(work, 'two-layers.img');
    const root: WNode & { kind: 'dir' } = {
      kind: 'dir',
      attrs: { mode: 0o755, uid: 0, gid: 0, mtime: 1 },
      children: new Map(),
    };
    // Each image's data (after its superblock, up to its tables) goes after the previous one's.
    const parts: Buffer[] = [Buffer.alloc(96)];
    let at = 96;
    for (const [k, layer] of layers.entries()) {
      const { fs: sq, close } = await openSquashfs(layer.img);
      const data = (await fs.readFile(layer.img)).subarray(96, sq.sb.inodeTable);
      root.children.set(`layer${k + 1}`, treeFromImage(sq, layer.xattrs, at - 96));
      await close();
      parts.push(data);
      at += data.length;
    }
    await fs.writeFile(partition, Buffer.concat(parts));
    const target = await fileTarget(partition);
    const opts = { partitionStart: 0, dataEnd: at, blockSize: 131072, compression: 'gzip' as const, mkfsTime: 1 };
    await writeSquashfs(target, { ...opts, root });
    await target.close();
    const merged = path.join(work, 'two-layers-x');
    unsq('-d', merged, '-no-progress', partition);
    for (const [k, layer] of layers.entries())
      expect(manifest(path.join(merged, `layer${k + 1}`))).toEqual(
        extracted(layer.img, path.join(work, `layer${k + 1}-x`)),
      );
  });

  it.each([1, 2, 3])('writes random tree %i (seeded) as mksquashfs made it', async (k) => {
    await roundTrip(`random${k}`, SEED * 10 + k, 400 * k * SCALE, false);
  });

  it('stores files given as bytes, a socket, and writes no export table when asked', async () => {
    const { img, xattrs } = await original('added', SEED, 50, false);
    const { fs: sq, close } = await openSquashfs(img);
    const root = treeFromImage(sq, xattrs);
    await close();
    const rand = seeded(SEED + 7);
    const random = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    const added: Record<string, Buffer> = {
      small: Buffer.from('made here\n'),
      empty: Buffer.alloc(0),
      'three-and-a-bit': Buffer.concat([random(131072), Buffer.alloc(131072, 'a'), random(131072), random(77)]),
      zeros: Buffer.alloc(3 * 131072 + 9),
    };
    const attrs = { mode: 0o640, uid: 123456, gid: 7, mtime: 1_600_000_000 };
    const dir: WNode & { kind: 'dir' } = { kind: 'dir', attrs: { ...attrs, mode: 0o755 }, children: new Map() };
    for (const [n, b] of Object.entries(added))
      dir.children.set(n, { kind: 'file', file: { attrs, size: b.length, data: b } });
    dir.children.set('sock', { kind: 'socket', attrs: { ...attrs, xattrs: [['trusted.s', Buffer.from('sock')]] } });
    root.children.set('added', dir);
    const { copy } = await rewrite(img, root, false);
    expect(unsq('-s', copy)).toContain('Filesystem is not exportable via NFS');
    const out = path.join(work, 'added-x');
    const m = extracted(copy, out);
    for (const [n, b] of Object.entries(added)) {
      expect((await fs.readFile(path.join(out, 'added', n))).equals(b)).toBe(true);
      expect(m[`/added/${n}`]).toMatchObject({ uid: 123456, gid: 7, mode: 0o100640, mtime: 1_600_000_000 });
    }
    expect(m['/added/sock']).toMatchObject({
      mode: 0o140640,
      xattrs: [['trusted.s', Buffer.from('sock').toString('hex')]],
    });
  });
});

/**
 * Writes the tree read from `img` over its own tables (dataEnd: where they began), metadata stored
 * uncompressed as mksquashfs -noI -noId -noX -noF stores it; returns both files, superblock flags cleared.
 */
async function inPlace(img: string, xattrs: ReadonlyMap<string, Array<[string, Buffer]>>) {
  const { fs: sq, close } = await openSquashfs(img);
  const root = treeFromImage(sq, xattrs);
  const sb = sq.sb;
  await close();
  const a = await fs.readFile(img);
  const copy = `${img}.new`;
  await fs.copyFile(img, copy);
  await fs.truncate(copy, sb.inodeTable);
  const target = await fileTarget(copy);
  const opts = { partitionStart: 0, dataEnd: sb.inodeTable, blockSize: 131072, compression: 'gzip' as const };
  await writeSquashfs(target, { ...opts, mkfsTime: a.readUInt32LE(8), root, uncompressedMetadata: true });
  await target.close();
  const b = await fs.readFile(copy);
  const flags = [a.readUInt16LE(24), b.readUInt16LE(24)];
  a.writeUInt16LE(0, 24);
  b.writeUInt16LE(0, 24);
  return { a, b, flags, sb };
}

/** mksquashfs's option flags the writer does not set (it finds no duplicates; NO_FRAGMENTS, ALWAYS_FRAGMENTS) and 4.5.1's missing UNCOMPRESSED_IDS. */
const OPTION_FLAGS = 0x10 | 0x20 | 0x40 | 0x800;
const UNCOMPRESSED = ['-noI', '-noId', '-noX', '-noF', '-processors', '1'];

describe('the squashfs writer, byte for byte', () => {
  it('writes the tables mksquashfs wrote for a directory (same bytes but for the superblock flags)', async () => {
    const rand = seeded(SEED + 99);
    const src = path.join(work, 'bytes-src');
    const xattrs = new Map<string, Array<[string, Buffer]>>();
    const text = (n: number) =>
      Buffer.from(Array.from({ length: n }, (_, i) => 97 + ((i * 7 + Math.floor(rand() * 3)) % 26)));
    await fs.mkdir(path.join(src, 'many'), { recursive: true });
    for (let i = 0; i < 400; i++)
      await fs.writeFile(path.join(src, 'many', `f${i}-${'n'.repeat(i % 40)}`), text(i * 37));
    await fs.mkdir(path.join(src, 'huge'));
    for (let i = 0; i < 700; i++) await fs.writeFile(path.join(src, 'huge', `${i}${'h'.repeat(95)}`), text(i % 5));
    await fs.writeFile(path.join(src, 'big'), text(500_000));
    await fs.link(path.join(src, 'big'), path.join(src, 'big2'));
    await fs.link(path.join(src, 'big'), path.join(src, 'many', 'big3'));
    await fs.symlink('big', path.join(src, 'link'));
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
    execFileSync('mknod', [path.join(src, 'dev'), 'c', '1', '3']);
    await fs.chown(path.join(src, 'big'), 100000, 200000);
    execFileSync('python3', [
      '-c',
      `import os; os.setxattr('${src}/many', 'user.a', b'dir'); os.setxattr('${src}/big', 'user.b', b'file'); os.setxattr('${src}/big', 'trusted.c', b'x' * 100)`,
    ]);
    xattrs.set('/many', [['user.a', Buffer.from('dir')]]);
    xattrs.set('/big', [
      ['user.b', Buffer.from('file')],
      ['trusted.c', Buffer.alloc(100, 'x')],
    ]);
    const img = path.join(work, 'bytes.img');
    execFileSync('mksquashfs', [src, img, '-noappend', '-quiet', '-no-progress', ...UNCOMPRESSED]);
    const { a, b, flags, sb } = await inPlace(img, xattrs);
    expect((flags[0] ^ flags[1]) & ~OPTION_FLAGS).toBe(0);
    expect(b.length).toBe(a.length);
    expect(b.equals(a)).toBe(true);
    expect(sb.fragments).toBeGreaterThan(1);
    console.log(`byte for byte (directory): ${sb.inodes} inodes, ${a.length - sb.inodeTable} bytes of tables equal`);
  });

  // Without fragments: mksquashfs -tar numbers fragment blocks neither in tree nor in position order.
  it('writes the tables mksquashfs wrote for a tar (every inode type, odd names, xattrs, long listings)', async () => {
    const args = [...UNCOMPRESSED, '-exports', '-no-fragments'];
    const { img, xattrs } = await original('tar-bytes', SEED, 300, true, args);
    const { a, b, flags, sb } = await inPlace(img, xattrs);
    expect((flags[0] ^ flags[1]) & ~OPTION_FLAGS).toBe(0);
    expect(b.length).toBe(a.length);
    expect(b.equals(a)).toBe(true);
    console.log(`byte for byte (tar): ${sb.inodes} inodes, ${a.length - sb.inodeTable} bytes of tables equal`);
  });
});
