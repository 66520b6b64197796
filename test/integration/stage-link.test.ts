/**
 * Staging a file the caller will remove (release's --out copies): on the
 * tree's file system it goes in by hard link, no byte copied; from another
 * file system (a real tmpfs, mounted here) it is copied. Either way the
 * ledger holds the bytes' checksum, and a kill -9 at any point leaves a
 * tree that a rerun makes right.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTree, openTree, stage, treeStatus, verifyTree, type Tree } from '../../src/index';
import { readLedger } from '../../src/tree/ledger';
import { TEMP_MARKER } from '../../src/util/files';
import { until } from '../support/poll';
import { makeSif } from '../support/sifs';

jest.setTimeout(120_000);

const DIST_INDEX = path.join(__dirname, '..', '..', 'dist', 'src', 'index.js');
const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('staging by hard link, with a copy across file systems', () => {
  let dir: string;
  let tree: Tree;
  let other: string;
  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root (CI does)');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-stage-link-'));
    tree = (await initTree(path.join(dir, 'tree'))).tree;
    await fs.mkdir(path.join(dir, 'out'));
    other = path.join(dir, 'other-fs');
    await fs.mkdir(other);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', other]);
  });
  afterAll(async () => {
    if (other) execFileSync('umount', [other]);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('links a file on the tree file system: the same inode, no second copy, its checksum on record', async () => {
    const file = path.join(dir, 'out', 'a.sif');
    const { name } = await makeSif(file, { stem: 'lumi-link-a', padBytes: 1 << 20 });
    const sum = sha256(file);
    const out = await fs.stat(file);
    // As release stages its --out copy: linked in, then given up under the lock.
    const r = await stage(tree, file, { link: true, removeAfter: [file] });
    expect(r.linked).toBe(true);
    const inTree = await fs.stat(r.path);
    expect(inTree.ino).toBe(out.ino);
    expect(inTree.nlink).toBe(1);
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
    expect((await readLedger(tree, name))?.sha256).toBe(sum);
    expect(sha256(r.path)).toBe(sum);
    // The ledger records the file as it is after its other name went (unlinking moves the inode's ctime): status agrees.
    expect((await treeStatus(tree)).images.find((i) => i.name === name)?.checksum).toBe('ok-cached');
    expect(await verifyTree(tree, { deep: true })).toEqual([]);
  });

  it('copies a file from another file system (EXDEV), and never links a file the user keeps', async () => {
    const far = path.join(other, 'b.sif');
    const b = await makeSif(far, { stem: 'lumi-link-b', padBytes: 1 << 20 });
    const r = await stage(tree, far, { link: true });
    expect(r.linked).toBe(false);
    expect((await fs.stat(r.path)).dev).not.toBe((await fs.stat(far)).dev);
    expect((await readLedger(tree, b.name))?.sha256).toBe(sha256(far));

    const kept = path.join(dir, 'out', 'c.sif');
    await makeSif(kept, { stem: 'lumi-link-c', padBytes: 1 << 20 });
    const c = await stage(tree, kept);
    expect(c.linked).toBe(false);
    expect((await fs.stat(c.path)).ino).not.toBe((await fs.stat(kept)).ino);
    expect(await verifyTree(tree, { deep: true })).toEqual([]);
  });

  // Each kill lands where the test first sees that state: a temp link beside the target, the ledger record.
  it.each([
    ['a temp link is in tested-containers', 'temp'],
    ['the ledger record is written', 'ledger'],
  ])('a kill -9 once %s: the rerun stages it, the ledger right', async (_what, when) => {
    const file = path.join(dir, 'out', `kill-${when}.sif`);
    const { name } = await makeSif(file, { stem: `lumi-kill-${when}`, padBytes: 24 << 20 });
    const sum = sha256(file);
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require(${JSON.stringify(DIST_INDEX)});
         s.openTree(process.argv[1], false).then((t) => s.stage(t, process.argv[2], { link: true }));`,
        tree.root,
        file,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((r) => child.once('exit', r));
    let done = false;
    void exited.then(() => (done = true));
    const seen = async () =>
      when === 'temp'
        ? (await fs.readdir(tree.tested)).some((n) => n.startsWith(`.${name}`) && n.includes(TEMP_MARKER))
        : (await readLedger(tree, name)) !== undefined;
    await until(async () => done || (await seen()), 5);
    child.kill('SIGKILL');
    await exited;
    // Whatever the kill left, the --out copy is whole and the rerun (as release reruns) finishes the stage.
    expect(sha256(file)).toBe(sum);
    const r = await stage(await openTree(tree.root, false), file, { link: true, removeAfter: [file] });
    expect(sha256(r.path)).toBe(sum);
    expect((await readLedger(tree, name))?.sha256).toBe(sum);
    // At most a temp file of the killed process is left, which verify --repair removes.
    const left = await verifyTree(tree, { deep: true });
    expect(left.filter((p) => p.kind !== 'temp-leftover')).toEqual([]);
    await verifyTree(tree, { deep: true, repair: true });
    expect(await verifyTree(tree, { deep: true })).toEqual([]);
  });
});
