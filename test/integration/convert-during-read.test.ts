/**
 * Issue 27.1: conversion during the read. Each layer is squashed by its
 * own mksquashfs as it streams and the final tables are written over the
 * layers' blocks (src/convert/during-read.ts). The SIF must hold, file
 * for file, what the two-pass conversion (one mksquashfs over the
 * flattened tree) gives: checked on seeded random images whose layers
 * replace, hide (whiteouts, opaque directories), hard-link, and carry
 * every entry type, odd modes, owners, times and xattrs, with the archive's
 * members in shuffled order (docker save sends them in hash order). The
 * real unsquashfs lists both; both are extracted as root and every path's
 * type, mode, owner, time, size, target, device, xattrs, hard-link group
 * and content compared.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tar from 'tar-stream';
import { convert } from '../../src/convert/convert';
import { LAYERED_PARTITION_OFFSET } from '../../src/convert/layered';
import { compareFiles } from '../../src/convert/reproducible';
import { inspectSif } from '../../src/sif/inspect';
import { tarBuffer } from '../support/archives';
import { prng } from '../support/hostile-strings';
import { kernelMounts, withMounted } from '../support/kernel-mount';

jest.setTimeout(300_000);

const KERNEL = kernelMounts('convert-during-read');
const SEED = Number(process.env.SIFKIT_TEST_SEED ?? 27_1204);

type Header = Partial<tar.Header> & { name: string };
type Entry = { header: tar.Header; body?: Buffer };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const CREATED = Date.parse('2026-01-01T00:00:00Z');

/** A random image: layers of entries over a small namespace, so later layers hit earlier paths. */
function randomLayers(r: () => number): Entry[][] {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const dirs = ['a', 'a/b', 'c', 'c/d e', 'ü', 'many'];
  const names = ['f', 'g', 'h.txt', 'x y', 'λ', 'long-' + 'n'.repeat(90)];
  const layers: Entry[][] = [];
  const count = 2 + Math.floor(r() * 5);
  for (let l = 0; l < count; l++) {
    const entries: Entry[] = [];
    const used = new Set<string>();
    const files: string[] = [];
    const time = () => new Date(r() < 0.2 ? CREATED + 86_400_000 : CREATED - Math.floor(r() * 1e9) * 1000);
    const add = (header: Header, body?: Buffer): boolean => {
      if (used.has(header.name)) return false;
      used.add(header.name);
      entries.push({ header: { mtime: time(), uid: 0, gid: 0, ...header } as tar.Header, body });
      return true;
    };
    // A directory of an earlier layer replaced by a file: nothing else of this layer goes under it.
    const replaced = l > 0 && r() < 0.3 ? pick(dirs) : undefined;
    const live = dirs.filter((d) => !replaced || (d !== replaced && !d.startsWith(`${replaced}/`)));
    if (replaced) add({ name: replaced, type: 'file', size: 3, mode: 0o644 }, Buffer.from('dir'));
    for (const d of live)
      if (r() < 0.5) add({ name: d, type: 'directory', mode: pick([0o755, 0o700, 0o1777, 0o2750]) });
    const n = 5 + Math.floor(r() * 20);
    for (let i = 0; i < n; i++) {
      const p = `${pick(live)}/${pick(names)}`;
      const what = r();
      if (what < 0.45) {
        const size = pick([0, 1, 100, 4096, 131071, 131072, 131073, 300_000]);
        const body = Buffer.alloc(size);
        if (r() < 0.5) for (let k = 0; k < size; k++) body[k] = Math.floor(r() * 256);
        else body.fill(`${l}:${p}\n`);
        const big = r() < 0.2;
        const header: Header = {
          name: p,
          type: 'file',
          size,
          mode: pick([0o644, 0o755, 0o600, 0o4755, 0o000]),
          uid: big ? 3_000_000 : pick([0, 1000, 65534]),
          gid: big ? 3_000_001 : pick([0, 100]),
        };
        if (r() < 0.2) header.pax = { 'SCHILY.xattr.user.k': `v${l}`, 'SCHILY.xattr.trusted.t': 'x' };
        if (add(header, body)) files.push(p);
      } else if (what < 0.55 && files.length) {
        add({ name: `${pick(live)}/hl-${i}`, type: 'link', linkname: pick(files), size: 0 });
      } else if (what < 0.65) {
        const targets = ['../f', '/etc/passwd', 'λ', 'nowhere', `../${'t'.repeat(150)}`];
        add({ name: p, type: 'symlink', linkname: pick(targets), mode: 0o777 });
      } else if (what < 0.72 && l > 0) {
        const parts = p.split('/');
        add({ name: [...parts.slice(0, -1), `.wh.${parts[parts.length - 1]}`].join('/'), size: 0 });
      } else if (what < 0.76 && l > 0) {
        add({ name: `${pick(live)}/.wh..wh..opq`, size: 0 });
      } else if (what < 0.85) {
        add({ name: p, type: 'fifo', mode: 0o640 });
      } else if (what < 0.9) {
        add({
          name: p,
          type: 'character-device',
          mode: 0o600,
          devmajor: pick([1, 4, 300]),
          devminor: pick([3, 64, 1000]),
        });
      }
    }
    if (live.includes('many') && r() < 0.5)
      for (let k = 0; k < 300; k++) add({ name: `many/e${k}`, type: 'file', size: 1 }, Buffer.from('m'));
    layers.push(entries);
  }
  return layers;
}

/** A legacy `docker save` archive, layer directories in shuffled order as hash order gives them, manifest last. */
async function archiveOf(file: string, layers: Buffer[], r: () => number): Promise<void> {
  const cfg = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: new Date(CREATED).toISOString(),
      config: { Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
    }),
  );
  const names = layers.map((l) => `${sha(Buffer.concat([l, Buffer.from(String(r()))]))}/layer.tar`);
  const members: Entry[] = layers.map((l, i) => ({
    header: { name: names[i], size: l.length } as tar.Header,
    body: l,
  }));
  members.sort((a, b) => (a.header.name < b.header.name ? -1 : 1));
  const manifest = [{ Config: `${sha(cfg)}.json`, RepoTags: ['fixture:latest'], Layers: names }];
  await fs.writeFile(
    file,
    await tarBuffer([
      ...members,
      { header: { name: `${sha(cfg)}.json` } as tar.Header, body: cfg },
      { header: { name: 'manifest.json' } as tar.Header, body: Buffer.from(JSON.stringify(manifest)) },
    ]),
  );
}

/** Every path of an extracted tree, as python's lstat and listxattr see it, hard links as groups. */
const DUMP = String.raw`
import errno, hashlib, json, os, stat, sys
root = sys.argv[1]; out = {}; groups = {}
def xattrs(p):
    try: return sorted((k, os.getxattr(p, k, follow_symlinks=False).hex()) for k in os.listxattr(p, follow_symlinks=False))
    except OSError as e:
        # A file system without xattrs (the kernel's squashfs when the image has none) does not list them.
        if e.errno != errno.EOPNOTSUPP: raise
        return []
for d, subdirs, files in os.walk(root):
    for n in sorted(subdirs + files):
        p = os.path.join(d, n); s = os.lstat(p); rel = os.path.relpath(p, root)
        e = {'mode': oct(s.st_mode), 'uid': s.st_uid, 'gid': s.st_gid, 'mtime': int(s.st_mtime),
             'xattrs': xattrs(p)}
        if stat.S_ISREG(s.st_mode):
            e['size'] = s.st_size; e['sha'] = hashlib.sha256(open(p, 'rb').read()).hexdigest(); e['nlink'] = s.st_nlink
            groups.setdefault(s.st_ino, []).append(rel)
        if stat.S_ISLNK(s.st_mode): e['target'] = os.readlink(p)
        if stat.S_ISCHR(s.st_mode) or stat.S_ISBLK(s.st_mode): e['dev'] = [os.major(s.st_rdev), os.minor(s.st_rdev)]
        out[rel] = e
print(json.dumps({'paths': out, 'links': sorted(sorted(g) for g in groups.values() if len(g) > 1)}, sort_keys=True))
`;

function partitionOf(sif: string): Promise<number> {
  return inspectSif(sif).then((s) => Number(s.partition?.offset));
}

async function facts(sif: string, work: string): Promise<{ listing: string; tree: unknown }> {
  const offset = await partitionOf(sif);
  // A directory's size is its listing's on disk, which depends on where its entries' inodes lie (a new
  // listing header at each inode metadata block): the files, not that layout, are compared.
  const listing = execFileSync('unsquashfs', ['-lln', '-o', String(offset), sif], { encoding: 'utf8' }).replace(
    /^(d\S+ \S+ +)\d+ /gm,
    '$1- ',
  );
  const dest = path.join(work, `x-${path.basename(sif)}`);
  execFileSync('unsquashfs', ['-o', String(offset), '-d', dest, '-f', '-q', '-n', sif], { stdio: 'ignore' });
  const tree = JSON.parse(execFileSync('python3', ['-c', DUMP, dest], { encoding: 'utf8', maxBuffer: 1 << 28 }));
  return { listing, tree };
}

async function convertWith(mode: 'two-pass' | 'during-read', archive: string, out: string) {
  const before = process.env.SIFKIT_CONVERT;
  process.env.SIFKIT_CONVERT = mode;
  try {
    return await convert(`docker-archive:${archive}`, out);
  } finally {
    if (before === undefined) delete process.env.SIFKIT_CONVERT;
    else process.env.SIFKIT_CONVERT = before;
  }
}

describe('conversion during the read gives the two-pass SIF, file for file', () => {
  let work: string;
  beforeAll(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-during-'));
    console.log(`convert-during-read seed: ${SEED} (SIFKIT_TEST_SEED to repeat)`);
  });
  afterAll(() => fs.rm(work, { recursive: true, force: true }));

  const CASES = 6;
  it.each(Array.from({ length: CASES }, (_, i) => i))('random image %i', async (i) => {
    const r = prng(SEED + i);
    const layers = await Promise.all(randomLayers(r).map((l) => tarBuffer(l)));
    const archive = path.join(work, `img${i}.tar`);
    await archiveOf(archive, layers, r);
    const a = path.join(work, `two-pass-${i}.sif`);
    const b = path.join(work, `during-${i}.sif`);
    let twoPass: Error | undefined;
    try {
      await convertWith('two-pass', archive, a);
    } catch (e) {
      twoPass = e as Error;
    }
    if (twoPass) {
      // An image the flattener refuses is refused the same way during the read.
      await expect(convertWith('during-read', archive, b)).rejects.toThrow(twoPass.message);
      return;
    }
    const made = await convertWith('during-read', archive, b);
    // Made during the read: its partition comes first in the file, and no reason for two passes is given.
    expect(await partitionOf(b)).toBe(LAYERED_PARTITION_OFFSET);
    expect(made.twoPassesBecause).toBeUndefined();
    const [fa, fb] = await Promise.all([facts(a, work), facts(b, work)]);
    expect(fb.listing).toBe(fa.listing);
    expect(fb.tree).toEqual(fa.tree);
    // The Linux kernel, which apptainer mounts a SIF with, reads the same tree from the SIF itself.
    if (KERNEL) {
      const offset = await partitionOf(b);
      const mounted = withMounted(b, offset, path.join(work, `mnt-${i}`), () =>
        JSON.parse(
          execFileSync('python3', ['-c', DUMP, path.join(work, `mnt-${i}`)], { encoding: 'utf8', maxBuffer: 1 << 28 }),
        ),
      );
      expect(mounted).toEqual(fa.tree);
    }
    // Reproducible: the same archive gives the same bytes again.
    const again = path.join(work, `again-${i}.sif`);
    await convertWith('during-read', archive, again);
    expect((await compareFiles(b, again)).identical).toBe(true);
  });

  it('falls back to two passes, with the same files, when a layer names a path twice', async () => {
    const layer = await tarBuffer([
      { header: { name: 'dup', size: 5, mtime: new Date(CREATED - 1000) } as tar.Header, body: Buffer.from('first') },
      { header: { name: 'dup', size: 6, mtime: new Date(CREATED - 1000) } as tar.Header, body: Buffer.from('second') },
    ]);
    const archive = path.join(work, 'dup.tar');
    await archiveOf(archive, [layer], prng(SEED));
    const a = path.join(work, 'dup-two.sif');
    const b = path.join(work, 'dup-during.sif');
    await convertWith('two-pass', archive, a);
    const made = await convertWith('during-read', archive, b);
    expect(made.twoPassesBecause).toBe('layer 1 names "dup" twice');
    expect((await compareFiles(a, b)).identical).toBe(true);
  });

  it('a layer that changed nothing (its tar is the end marker alone) is read during the read too', async () => {
    const file = (name: string, body: string) => ({
      header: { name, size: body.length, mtime: new Date(CREATED - 1000) } as tar.Header,
      body: Buffer.from(body),
    });
    const layers = [await tarBuffer([file('a', 'one\n')]), await tarBuffer([]), await tarBuffer([file('b', 'two\n')])];
    expect(layers[1].every((b) => b === 0)).toBe(true);
    const archive = path.join(work, 'empty-layer.tar');
    await archiveOf(archive, layers, prng(SEED));
    const a = path.join(work, 'empty-two.sif');
    const b = path.join(work, 'empty-during.sif');
    await convertWith('two-pass', archive, a);
    const made = await convertWith('during-read', archive, b);
    expect(made.twoPassesBecause).toBeUndefined();
    expect(await partitionOf(b)).toBe(LAYERED_PARTITION_OFFSET);
    const [fa, fb] = await Promise.all([facts(a, work), facts(b, work)]);
    expect(fb.tree).toEqual(fa.tree);
  });
});
