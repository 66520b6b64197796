/**
 * Seeded layer tars for the squashfs writer's tests: every entry type tar
 * carries, hard links of three names, xattrs in the three namespaces
 * squashfs stores (and one it skips), uids and gids past 16 bits, odd
 * names, directories of many entries and long listings, files of every
 * size that matters to squashfs (empty, a fragment, one block, a block
 * and a byte, zero blocks). Also `manifest`: a tree extracted by
 * unsquashfs, described by python's os module (lstat, xattrs, sha256,
 * hard-link groups) for comparing two file systems file for file.
 */
import { execFileSync } from 'node:child_process';
import type * as tar from 'tar-stream';
import { tarBuffer } from './archives';

export interface GenTar {
  tar: Buffer;
  /** Xattrs squashfs keeps, by path (`/a/b`), as the writer's tree takes them. */
  xattrs: Map<string, Array<[string, Buffer]>>;
}

const NAMES = ['with space', 'ünïcödé-名前', 'new\nline', 'tab\tx', 'x'.repeat(255), '-dash', '.hidden', 'A', 'a', 'é'];

/** Bytes that compress (text) or not (random), or zeros, `n` of them. */
function content(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const kind = Math.floor(rand() * 3);
  if (kind === 0) for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  else if (kind === 1) for (let i = 0; i < n; i++) b[i] = 97 + ((i * 7 + (i >> 9)) % 26);
  return b;
}

export function generateTar(rand: () => number, opts: { randomEntries: number; fixed: boolean }): Promise<GenTar> {
  const entries: Array<{ header: tar.Header; body?: Buffer }> = [];
  const xattrs = new Map<string, Array<[string, Buffer]>>();
  const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)];
  const id = () => pick([0, 1, 1000, 65534, 65535, 65536, 70000, 1_000_000, 2_000_000]);
  const mtime = () => new Date(Math.floor(rand() * 2 ** 31) * 1000);
  const add = (name: string, h: Partial<tar.Header>, body?: Buffer, x?: Array<[string, string]>) => {
    const header = { name, mode: 0o644, uid: id(), gid: id(), mtime: mtime(), ...h } as tar.Header;
    if (x) {
      header.pax = Object.fromEntries(x.map(([k, v]) => [`SCHILY.xattr.${k}`, v]));
      const kept = x.filter(([k]) => /^(user|trusted|security)\./.test(k)).map(([k, v]) => [k, Buffer.from(v)]);
      if (kept.length) xattrs.set(`/${name.replace(/\/$/, '')}`, kept as Array<[string, Buffer]>);
    }
    entries.push({ header, body });
  };
  const file = (name: string, size: number, x?: Array<[string, string]>) =>
    add(name, { type: 'file', mode: pick([0o644, 0o755, 0o4755, 0o600, 0o1777]) }, content(rand, size), x);
  const dir = (name: string, x?: Array<[string, string]>) =>
    add(`${name}/`, { type: 'directory', mode: pick([0o755, 0o700, 0o1777, 0o2755]) }, undefined, x);

  if (opts.fixed) {
    const bs = 131072;
    dir('sizes', [['user.dir', 'on a directory']]);
    for (const [n, size] of [
      ['empty', 0],
      ['one', 1],
      ['small', 1000],
      ['one-block', bs],
      ['block-and-one', bs + 1],
      ['three-blocks-tail', 3 * bs + 5000],
      ['four-blocks', 4 * bs],
    ] as const)
      file(`sizes/${n}`, size);
    // A zero block between data blocks: mksquashfs stores it as a sparse block (size word 0).
    add(
      'sizes/sparse',
      { type: 'file' },
      Buffer.concat([Buffer.alloc(bs, 1), Buffer.alloc(2 * bs), Buffer.alloc(99, 2)]),
    );
    file('links/a', 5000, [
      ['user.mime', 'text/plain'],
      ['trusted.t', 'trusted value'],
      ['security.s', 'sec'],
      ['system.skipped', 'x'],
    ]);
    add('links/b', { type: 'link', linkname: 'links/a' });
    add('links/sub/c', { type: 'link', linkname: 'links/a' });
    add('special/null', { type: 'character-device', devmajor: 1, devminor: 3 }, undefined, [['trusted.dev', 'c']]);
    add('special/sda1', { type: 'block-device', devmajor: 8, devminor: 1 });
    add('special/big-dev', { type: 'character-device', devmajor: 250, devminor: 70000 });
    add('special/fifo', { type: 'fifo' });
    add('special/rel', { type: 'symlink', linkname: '../links/a' }, undefined, [['trusted.on-link', 'l']]);
    add('special/abs', { type: 'symlink', linkname: '/etc/passwd' });
    add('special/long', { type: 'symlink', linkname: 'y'.repeat(3000) });
    for (const n of NAMES) file(`names/${n}`, Math.floor(rand() * 300));
    // More than 256 entries; a listing past 8 KiB.
    for (let i = 0; i < 300; i++) file(`many/entry-${i.toString().padStart(4, '0')}-${'n'.repeat(20)}`, i % 7);
    // A listing past 64 KiB: an extended directory with index points.
    for (let i = 0; i < 700; i++) file(`huge/${i.toString().padStart(5, '0')}${'h'.repeat(95)}`, i % 3 ? 10 : 0);
  }
  const dirs = ['', 'r/', 'r/s/', 'r/s/t/', 'q/'];
  for (const d of dirs.slice(1)) dir(d.slice(0, -1));
  for (let i = 0; i < opts.randomEntries; i++) {
    const name = `${pick(dirs)}e${i}-${pick(NAMES).slice(0, 20)}`;
    const r = rand();
    if (r < 0.6)
      file(
        name,
        pick([0, 1, 100, 4000, 131071, 131072, 131073, 300_000]),
        rand() < 0.2 ? [['user.k', `v${i}`]] : undefined,
      );
    else if (r < 0.7) add(name, { type: 'symlink', linkname: `target-${i}` });
    else if (r < 0.8 && entries.some((e) => e.header.type === 'file')) {
      const target = pick(entries.filter((e) => e.header.type === 'file')).header.name;
      add(name, { type: 'link', linkname: target });
    } else if (r < 0.9) dir(name);
    else add(name, { type: 'fifo' });
  }
  return tarBuffer(entries).then((t) => ({ tar: t, xattrs }));
}

const MANIFEST = `
import os, sys, json, hashlib, stat
root = sys.argv[1]
out, first = {}, {}
for d, dirs, files in os.walk(root):
    for n in sorted(dirs + files + ['']):
        p = os.path.join(d, n) if n else d
        if not n and d != root: continue
        st = os.lstat(p)
        rel = '/' + os.path.relpath(p, root) if p != root else '/'
        e = {'mode': st.st_mode, 'uid': st.st_uid, 'gid': st.st_gid, 'mtime': int(st.st_mtime), 'nlink': st.st_nlink}
        if stat.S_ISREG(st.st_mode):
            e['size'] = st.st_size
            e['sha'] = hashlib.sha256(open(p, 'rb').read()).hexdigest()
            first.setdefault(st.st_ino, []).append(rel)
            e['ino'] = st.st_ino
        if stat.S_ISLNK(st.st_mode): e['target'] = os.readlink(p)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode): e['rdev'] = st.st_rdev
        e['xattrs'] = sorted([k, os.getxattr(p, k, follow_symlinks=False).hex()] for k in os.listxattr(p, follow_symlinks=False))
        out[rel] = e
for e in out.values():
    if 'ino' in e: e['same'] = min(first[e.pop('ino')])
print(json.dumps(out, sort_keys=True))
`;

/** A tree on disk described file for file (the root's own mtime and mode included). */
export function manifest(dir: string): Record<string, Record<string, unknown>> {
  return JSON.parse(execFileSync('python3', ['-c', MANIFEST, dir], { maxBuffer: 1 << 28 }).toString()) as Record<
    string,
    Record<string, unknown>
  >;
}
