/**
 * sifkit's squashfs reader against real `mksquashfs` images of a tree made
 * here (seeded; the seed is printed): many files, one directory of
 * thousands, hard links, symbolic links, a fifo, a device, sparse files
 * (one past 4 GiB, so extended inodes), files of exactly one block, ELF
 * files. Each image is listed by the reader and by `unsquashfs -lln`, line
 * for line; every file's bytes are compared with the file it was made
 * from, and random ranges of the large ones; ELF facts read through it
 * equal those read from disk. Block sizes, fragments off and always,
 * uncompressed tables; xz refused with its own code; a cut image refused.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readElfFile } from '../../src/elf/file';
import { parseElf } from '../../src/elf/format';
import { SquashfsError, type Entry, type Squashfs } from '../../src/squashfs/format';
import { openSquashfs } from '../../src/squashfs/file';
import { seeded as random } from '../../bench/torture';
import { listingLine } from '../support/squashfs-listing';

jest.setTimeout(600_000);

const SEED = Number(process.env.SIFKIT_TEST_SEED ?? Date.now() % 1_000_000);

/** Half random, half text: blocks that compress and blocks that do not (stored uncompressed). */
function pool(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 8192 < 4096 ? Math.floor(rand() * 256) : 97 + (i % 26);
  return b;
}

/** `n` bytes from a seeded place of the pool (repeating it when longer). */
function bytes(rand: () => number, n: number): Buffer {
  const from = Math.floor(rand() * POOL.length);
  const out = Buffer.alloc(n);
  for (let at = 0; at < n;) at += POOL.copy(out, at, at === 0 ? from : 0);
  return out;
}

let POOL: Buffer = Buffer.alloc(0);

async function makeTree(root: string, rand: () => number): Promise<void> {
  const w = (p: string, data: Buffer | string) => fs.writeFile(path.join(root, p), data);
  await fs.mkdir(path.join(root, 'many'), { recursive: true });
  // More than 256 entries (several directory headers) and a listing over 8 KiB (an indexed directory).
  for (let i = 0; i < 1500; i++)
    await w(`many/f${i.toString().padStart(4, '0')}`, bytes(rand, Math.floor(rand() * 3000)));
  for (let d = 0; d < 20; d++) {
    const dir = path.join(root, 'deep', ...Array.from({ length: d % 7 }, (_, k) => `l${k}`), `d${d}`);
    await fs.mkdir(dir, { recursive: true });
    for (let i = 0; i < 30; i++)
      await fs.writeFile(path.join(dir, `x ${i} é`), bytes(rand, Math.floor(rand() * 200_000)));
  }
  await fs.mkdir(path.join(root, 'empty-dir'));
  await w('empty', '');
  await w('one-block', bytes(rand, 131072));
  await w('block-and-one', bytes(rand, 131073));
  await w('large', bytes(rand, 9 * 1024 * 1024 + 17));
  // Sparse: holes become blocks of size 0.
  const sparse = await fs.open(path.join(root, 'sparse'), 'w');
  await sparse.write(Buffer.from('start'), 0, 5, 0);
  await sparse.write(Buffer.from('middle'), 0, 6, 20 * 1024 * 1024);
  await sparse.truncate(40 * 1024 * 1024 + 3);
  await sparse.close();
  await fs.link(path.join(root, 'large'), path.join(root, 'large-hardlink'));
  await fs.link(path.join(root, 'many/f0001'), path.join(root, 'deep/f0001-link'));
  await fs.symlink('many/f0002', path.join(root, 'rel-link'));
  await fs.symlink('/etc/passwd', path.join(root, 'abs-link'));
  await fs.symlink('x'.repeat(3000), path.join(root, 'long-link'));
  await fs.symlink('nowhere', path.join(root, 'dangling'));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  execFileSync('mknod', [path.join(root, 'null-dev'), 'c', '1', '3']);
  await fs.mkdir(path.join(root, 'bin'));
  for (const f of ['/bin/ls', '/bin/sh', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libz.so.1'])
    await fs.copyFile(f, path.join(root, 'bin', path.basename(f)));
  await fs.chmod(path.join(root, 'bin/ls'), 0o4755);
  await fs.chmod(path.join(root, 'empty-dir'), 0o1777);
  await fs.chmod(path.join(root, 'one-block'), 0o2640);
}

async function walk(sq: Squashfs): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const e of sq.walk()) out.push(e);
  return out;
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A file's bytes through the reader, in pieces of at most 8 MiB (as a bounded caller would). */
async function digestThrough(sq: Squashfs, e: Entry): Promise<string> {
  if (e.inode.kind !== 'file') throw new Error(`${e.path} is not a file`);
  const src = sq.fileSource(e.inode);
  const h = createHash('sha256');
  for (let at = 0; at < src.size; at += 8 << 20) h.update(await src.read(at, Math.min(8 << 20, src.size - at)));
  return h.digest('hex');
}

async function digestOnDisk(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of (await fs.open(file)).createReadStream()) h.update(c as Buffer);
  return h.digest('hex');
}

describe('the squashfs reader against mksquashfs and unsquashfs', () => {
  let dir: string;
  let tree: string;
  let small: string;
  const rand = random(SEED);

  beforeAll(async () => {
    console.log(`squashfs-reader seed ${SEED} (SIFKIT_TEST_SEED=${SEED} replays it)`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h40-squashfs-'));
    POOL = pool(rand, 3 << 20);
    tree = path.join(dir, 'tree');
    await fs.mkdir(tree);
    await makeTree(tree, rand);
    small = path.join(dir, 'small');
    await fs.mkdir(small);
    await fs.copyFile('/bin/ls', path.join(small, 'ls'));
    await fs.writeFile(path.join(small, 'text'), bytes(rand, 300_000));
  });

  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function image(name: string, options: string[], from = tree): Promise<string> {
    const out = path.join(dir, `${name}.squashfs`);
    execFileSync('mksquashfs', [from, out, '-noappend', '-quiet', '-no-progress', '-processors', '1', ...options], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return out;
  }

  const variants: Array<[string, string[]]> = [
    ['default', []],
    ['small-blocks', ['-b', '4096']],
    ['no-fragments', ['-no-fragments']],
    ['always-fragments', ['-always-use-fragments', '-b', '1M']],
    ['uncompressed', ['-noI', '-noD', '-noF', '-noX']],
  ];

  it.each(variants)('lists %s exactly as unsquashfs -lln does, and reads every file back', async (name, options) => {
    const file = await image(name, options);
    const theirs = execFileSync('unsquashfs', ['-lln', '-UTC', file], { maxBuffer: 1 << 28, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    const { fs: sq, close } = await openSquashfs(file);
    try {
      const entries = await walk(sq);
      expect(entries.map(listingLine)).toEqual(theirs);
      // Every regular file's bytes, against the file it was made from.
      for (const e of entries) {
        if (e.inode.kind !== 'file') continue;
        expect([e.path, await digestThrough(sq, e)]).toEqual([e.path, await digestOnDisk(path.join(tree, e.path))]);
      }
      // Random ranges of the large file, in a seeded order (cache and prefix decoding exercised).
      const large = entries.find((e) => e.path === '/large')!;
      if (large.inode.kind !== 'file') throw new Error('large is not a file');
      const ls = sq.fileSource(large.inode);
      const disk = await fs.readFile(path.join(tree, 'large'));
      for (let k = 0; k < 200; k++) {
        const at = Math.floor(rand() * disk.length);
        const n = Math.floor(rand() * 300_000);
        expect(sha(await ls.read(at, n))).toBe(sha(disk.subarray(at, at + n)));
      }
      // ELF facts through the reader equal those from disk.
      for (const p of ['/bin/ls', '/bin/sh', '/bin/libc.so.6', '/bin/libz.so.1']) {
        const e = entries.find((x) => x.path === p)!;
        if (e.inode.kind !== 'file') throw new Error(`${p} is not a file`);
        expect(await parseElf(sq.fileSource(e.inode))).toEqual(await readElfFile(path.join(tree, p)));
      }
    } finally {
      await close();
    }
  });

  it('reads a sparse file past 4 GiB (an extended inode, 64-bit size) by its ends and a random middle', async () => {
    const from = path.join(dir, 'huge');
    await fs.mkdir(from);
    const huge = await fs.open(path.join(from, 'huge-sparse'), 'w');
    await huge.write(Buffer.from('tail'), 0, 4, 2 ** 32 + 4096);
    await huge.close();
    const file = await image('huge', [], from);
    expect(execFileSync('unsquashfs', ['-lln', '-UTC', file], { encoding: 'utf8' })).toContain(' 4294971396 ');
    const { fs: sq, close } = await openSquashfs(file);
    try {
      const e = (await walk(sq)).find((x) => x.path === '/huge-sparse')!;
      if (e.inode.kind !== 'file') throw new Error('huge-sparse is not a file');
      const hs = sq.fileSource(e.inode);
      expect(hs.size).toBe(2 ** 32 + 4100);
      expect((await hs.read(2 ** 32 + 4090, 100)).toString()).toBe(`${'\0'.repeat(6)}tail`);
      expect((await hs.read(Math.floor(rand() * 2 ** 32), 4096)).equals(Buffer.alloc(4096))).toBe(true);
    } finally {
      await close();
    }
  });

  it('refuses a compressor it cannot decode with its own code, so compat can fall back', async () => {
    const file = await image('xz', ['-comp', 'xz'], small);
    const p = openSquashfs(file);
    await expect(p).rejects.toThrow(SquashfsError);
    await expect(p).rejects.toMatchObject({ code: 'compressor' });
  });

  it('refuses a cut image in one error, not a crash or a wrong listing', async () => {
    const file = await image('cut', [], small);
    const size = (await fs.stat(file)).size;
    await fs.truncate(file, Math.floor(size * 0.98));
    const p = (async () => {
      const { fs: sq, close } = await openSquashfs(file);
      try {
        return await walk(sq);
      } finally {
        await close();
      }
    })();
    await expect(p).rejects.toThrow(SquashfsError);
  });
});
