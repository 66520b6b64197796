/**
 * compat's own squashfs read against squashfs-tools: the files of a real
 * mksquashfs image (a seeded sample of this host's shared libraries and
 * programs, scripts with the execute bit, a hard link, symbolic links,
 * ld.so.conf and ld.so.cache) read in place by sifkit's reader must be
 * exactly what `unsquashfs -lln` and `-cat` give: every path in the same
 * order, every ELF fact, the ld.so.conf texts and cache, the warnings.
 * Default blocks with fragments, and small blocks (a library over many
 * blocks, its header in a prefix of the first).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { unsquashfsFiles } from '../../src/compat/image';
import { squashImageFiles } from '../../src/compat/squash-files';
import { openSquashfs } from '../../src/squashfs/file';
import { seeded as random } from '../../bench/torture';

jest.setTimeout(600_000);

const SEED = Number(process.env.SIFKIT_TEST_SEED ?? Date.now() % 1_000_000);
const LIBS = '/usr/lib/x86_64-linux-gnu';

async function makeTree(root: string, rand: () => number): Promise<void> {
  const lib = path.join(root, 'usr/lib/x86_64-linux-gnu');
  const bin = path.join(root, 'usr/bin');
  const conf = path.join(root, 'etc/ld.so.conf.d');
  for (const d of [lib, bin, conf]) await fs.mkdir(d, { recursive: true });
  const names = (await fs.readdir(LIBS, { withFileTypes: true }))
    .filter((e) => e.isFile() && /\.so(\.|$)/.test(e.name))
    .map((e) => e.name)
    .sort();
  // libc always (many version definitions), then a seeded sample.
  const sample = new Set(['libc.so.6', 'libz.so.1']);
  while (sample.size < Math.min(80, names.length)) sample.add(names[Math.floor(rand() * names.length)]);
  for (const n of sample) await fs.copyFile(path.join(LIBS, n), path.join(lib, n));
  for (const p of ['ls', 'sh', 'env', 'cat']) await fs.copyFile(path.join('/bin', p), path.join(bin, p));
  await fs.writeFile(path.join(bin, 'script'), '#!/bin/sh\necho a script, executable, not ELF\n', { mode: 0o755 });
  // Executable, ELF magic, then nothing that parses: a warning from both readers.
  await fs.writeFile(path.join(bin, 'broken'), Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(60, 0xff)]), {
    mode: 0o755,
  });
  await fs.link(path.join(lib, 'libz.so.1'), path.join(lib, 'h52-hardlink-libz.so.1'));
  await fs.symlink('libc.so.6', path.join(lib, 'h52-symlink-libc.so'));
  await fs.writeFile(path.join(root, 'etc/ld.so.conf'), 'include /etc/ld.so.conf.d/*.conf\n');
  await fs.writeFile(
    path.join(conf, 'x86_64-linux-gnu.conf'),
    '/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n',
  );
  await fs.copyFile('/etc/ld.so.cache', path.join(root, 'etc/ld.so.cache'));
}

describe("compat's squashfs read against unsquashfs", () => {
  let dir: string;
  let tree: string;

  beforeAll(async () => {
    console.log(`compat-squash-read seed ${SEED} (SIFKIT_TEST_SEED=${SEED} replays it)`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h52-squash-read-'));
    tree = path.join(dir, 'tree');
    await makeTree(tree, random(SEED));
  });

  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['default blocks and fragments', []],
    ['4 KiB blocks', ['-b', '4096']],
  ])('reads the same files as unsquashfs -lln and -cat (%s)', async (_what, options: string[]) => {
    const file = path.join(dir, `image-${options.length}.squashfs`);
    execFileSync('mksquashfs', [tree, file, '-noappend', '-quiet', '-no-progress', '-processors', '1', ...options], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const theirWarnings: string[] = [];
    const theirs = await unsquashfsFiles(file, 0, { warn: (l) => theirWarnings.push(l) });
    const ourWarnings: string[] = [];
    const { fs: sq, close } = await openSquashfs(file);
    let ours;
    try {
      ours = await squashImageFiles(sq, { name: file, warn: (l) => ourWarnings.push(l) });
    } finally {
      await close();
    }
    const elfs = [...ours.entries.values()].filter((e) => e.kind === 'file' && e.elf).length;
    expect(elfs).toBeGreaterThan(60);
    expect(ourWarnings).toHaveLength(1);
    expect(ourWarnings).toEqual(theirWarnings);
    // As lists: the same paths in the same order, not only the same set.
    expect([...ours.entries]).toEqual([...theirs.entries]);
    expect([...ours.ldconf]).toEqual([...theirs.ldconf]);
    expect(ours.ldCache).toBeDefined();
    expect(ours.ldCache).toEqual(theirs.ldCache);
  });
});
