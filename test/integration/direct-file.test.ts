/**
 * The archive's file sink past the page cache (util/direct-file.ts), with
 * the kernel's own O_DIRECT on real file systems: every byte lands, a last
 * piece shorter than a block too (written padded, then the file cut), and
 * none of it stays in the page cache (fincore counts); a full disk is the
 * system's one-line error; a sink cut short is no whole file; an existing
 * name is refused as before.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fromSystemError } from '../../src/errors';
import { createFileSink } from '../../src/util/direct-file';
import { seedOfRun } from '../support/hostile-strings';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-direct-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Chunks of seeded sizes (odd ones, so each staged block is made of many), `total` bytes in all. */
function chunks(total: number, seed: number): Buffer[] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31);
  const out: Buffer[] = [];
  for (let left = total; left > 0;) {
    const n = Math.min(left, 1 + (next() % 300_000));
    out.push(randomBytes(n));
    left -= n;
  }
  return out;
}

const sha = (bufs: Buffer[]) => bufs.reduce((h, b) => h.update(b), createHash('sha256')).digest('hex');

it('writes every byte past the page cache, the short last block too', async () => {
  const seed = seedOfRun('direct-file');
  const data = chunks(3 * (1 << 20) + 777, seed);
  const file = path.join(dir, 'a.tar');
  const { sink, written, how } = await createFileSink(file);
  expect(how).toBe('direct');
  await pipeline(Readable.from(data), sink);
  await written;
  expect((await fs.stat(file)).size).toBe(3 * (1 << 20) + 777);
  // Past the page cache: none of the file's pages are resident (read before anything reads the file).
  const [pages] = execFileSync('fincore', ['--noheadings', '--raw', '-o', 'PAGES', file])
    .toString()
    .trim()
    .split(/\s+/);
  expect(Number(pages)).toBe(0);
  expect(sha([await fs.readFile(file)])).toBe(sha(data));
});

it('refuses a name that exists, as a new file must', async () => {
  const file = path.join(dir, 'taken');
  await fs.writeFile(file, 'x');
  await expect(createFileSink(file)).rejects.toMatchObject({ code: 'EEXIST' });
  expect(await fs.readFile(file, 'utf8')).toBe('x');
});

it('a sink cut short is no whole file: written rejects', async () => {
  const file = path.join(dir, 'cut.tar');
  const { sink, written } = await createFileSink(file);
  sink.write(randomBytes(100_000));
  sink.destroy();
  await expect(written).rejects.toMatchObject({ code: 'interrupted' });
});

it('a full disk (a 256 KiB tmpfs) is the system error a write gives: one line, exit 1', async () => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root (CI does)');
  const mnt = path.join(dir, 'small');
  await fs.mkdir(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'sifkit-direct-full', mnt]);
  try {
    const file = path.join(mnt, 'big.tar');
    const { sink, written } = await createFileSink(file);
    sink.on('error', () => undefined);
    sink.end(randomBytes(2 << 20));
    const e = await written.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ code: 'ENOSPC' });
    const shown = fromSystemError(e);
    expect(shown?.exitCode).toBe(1);
    expect(shown?.message).toContain('no space left on device');
    expect(shown?.message.split('\n')).toHaveLength(1);
  } finally {
    execFileSync('umount', [mnt]);
  }
});
