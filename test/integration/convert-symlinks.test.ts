/**
 * Symlink targets and long or non-ASCII names, through the real
 * `mksquashfs -tar` and read back by the real `unsquashfs -lln`: from a
 * docker archive (the two-pass converter) and from the engine (`docker
 * export`). mksquashfs 4.5.1 strips a leading "/", "./" or "../" from a
 * pax `linkpath=`, which tar-stream wrote for any entry that needed a pax
 * header: `ü/λ -> /etc/passwd` came out `-> etc/passwd`.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tar from 'tar-stream';
import { inspectSif } from '../../src/sif/inspect';
import { LINK_BASES, LINK_CASES, legacyArchive, tarBuffer } from '../support/archives';
import { runCli } from '../support/cli';
import { BUSYBOX, docker, removeTestImages, runId } from '../support/engine';
import { buildFixtureImage } from '../support/trees';

jest.setTimeout(300_000);

const BASES = LINK_BASES;
const LINKS = LINK_CASES;
/** Owners past six octal digits (tar-stream's ustar field), on a link and on a file. */
const OWNED = { uid: 300000, gid: 2097151 };

/** What a listing must show: type letter, size column (a link's target's bytes), owner, target. */
interface Want {
  type: string;
  size: string;
  owner?: string;
  target?: string;
}

function expected(): Map<string, Want> {
  const want = new Map<string, Want>();
  for (const l of LINKS) want.set(l.name, { type: 'l', size: String(Buffer.byteLength(l.target)), target: l.target });
  for (const b of BASES) {
    want.set(`${b}-file`, { type: '-', size: '2' });
    want.set(`${b}-hard`, { type: '-', size: '2' });
    want.set(`${b}-dir`, { type: 'd', size: '3' });
    want.set(`${b}-fifo`, { type: 'p', size: '0' });
    want.set(`${b}-null`, { type: 'c', size: '1,  3' });
  }
  const owner = `${OWNED.uid}/${OWNED.gid}`;
  want.set('own/link', { type: 'l', size: '11', owner, target: '/etc/passwd' });
  want.set('own/file', { type: '-', size: '2', owner });
  return want;
}

/** The SIF's partition as `unsquashfs -lln` lists it, by path. */
function listing(sif: string, offset: number): Map<string, Want> {
  const out = execFileSync('unsquashfs', ['-lln', '-o', String(offset), sif], { maxBuffer: 64 << 20 }).toString();
  const got = new Map<string, Want>();
  for (const line of out.split('\n')) {
    const m = /^(\S)\S{9} (\d+\/\d+) +(.+?) \d{4}-\d\d-\d\d \d\d:\d\d squashfs-root\/(.*)$/.exec(line);
    if (!m) continue;
    const [, type, owner, size, rest] = m;
    const arrow = type === 'l' ? rest.indexOf(' -> ') : -1;
    const name = arrow < 0 ? rest : rest.slice(0, arrow);
    got.set(name, { type, size, owner, ...(arrow < 0 ? {} : { target: rest.slice(arrow + 4) }) });
  }
  return got;
}

/** Each wanted path as listed (owner only where the case names one). */
function compare(got: Map<string, Want>): Array<[string, Want | undefined]> {
  return [...expected()].map(([name, w]) => {
    const g = got.get(name);
    if (!g) return [name, undefined];
    return [
      name,
      {
        type: g.type,
        size: g.size.trim(),
        ...(w.owner ? { owner: g.owner } : {}),
        ...(g.target !== undefined ? { target: g.target } : {}),
      },
    ];
  });
}

async function convertAndList(source: string, out: string, env: NodeJS.ProcessEnv = {}): Promise<Map<string, Want>> {
  const r = await runCli(['convert', source, '-o', out], { env });
  expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/^converted /)]);
  return listing(out, Number((await inspectSif(out)).partition!.offset));
}

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-convert-symlinks-'));
});
afterAll(async () => {
  await removeTestImages();
  if (!process.env.SIFKIT_KEEP_TEST_FILES) await fs.rm(dir, { recursive: true, force: true });
});

/** Every directory above these paths, parents first. */
function parents(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort((a, b) => a.split('/').length - b.split('/').length);
}

it('keeps every symlink target and name from a docker archive (two-pass), member names under ./', async () => {
  const time = new Date('2026-01-01T00:00:00Z');
  const h = (name: string, o: Partial<tar.Header>): { header: tar.Header; body?: Buffer } => ({
    header: { name: `./${name}`, mode: 0o644, mtime: time, ...o } as tar.Header,
  });
  const want = expected();
  const layer = await tarBuffer([
    ...parents([...want.keys()]).map((d) => h(`${d}/`, { type: 'directory', mode: 0o755 })),
    ...LINKS.map((l) => h(l.name, { type: 'symlink', mode: 0o777, linkname: l.target })),
    ...BASES.flatMap((b) => [
      { ...h(`${b}-file`, { type: 'file' }), body: Buffer.from('f\n') },
      // A hard link's target is a member path: ./ on it too.
      h(`${b}-hard`, { type: 'link', linkname: `./${b}-file` }),
      h(`${b}-dir/`, { type: 'directory', mode: 0o755 }),
      h(`${b}-fifo`, { type: 'fifo' }),
      h(`${b}-null`, { type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 }),
    ]),
    // Big owners as a tar writer must: in pax, the ustar field zero.
    h('own/link', { type: 'symlink', mode: 0o777, linkname: '/etc/passwd', pax: { uid: '300000', gid: '2097151' } }),
    { ...h('own/file', { type: 'file', pax: { uid: '300000', gid: '2097151' } }), body: Buffer.from('o\n') },
  ]);
  const archive = path.join(dir, 'links.tar');
  await legacyArchive(archive, [layer]);
  // SIFKIT_CONVERT picks the two-pass converter where one-read is the default; before that, it is the only one.
  const got = await convertAndList(`docker-archive:${archive}`, path.join(dir, 'archive.sif'), {
    SIFKIT_CONVERT: 'two-pass',
  });
  expect(compare(got)).toEqual([...want].map(([name, w]) => [name, w]));
});

it('keeps every symlink target and name from the engine (docker export)', async () => {
  const q = (s: string) => `'${s}'`;
  const want = expected();
  const steps = [
    `RUN mkdir -p ${parents([...want.keys()])
      .map(q)
      .join(' ')}`,
    // One RUN per base keeps each Dockerfile line a few kB.
    ...BASES.map((b) =>
      [
        `RUN cd / && echo f > ${q(`${b}-file`)} && ln ${q(`${b}-file`)} ${q(`${b}-hard`)}`,
        `mkdir ${q(`${b}-dir`)} && mkfifo ${q(`${b}-fifo`)} && mknod -m 666 ${q(`${b}-null`)} c 1 3`,
        ...LINKS.filter((l) => l.name.startsWith(`${b}-`)).map((l) => `ln -s ${q(l.target)} ${q(l.name)}`),
      ].join(' && '),
    ),
    `RUN cd / && ln -s /etc/passwd own/link && echo o > own/file && chown -h ${OWNED.uid}:${OWNED.gid} own/link own/file`,
  ];
  const tag = `sifkittest/symlinks:${runId}`;
  await buildFixtureImage(docker, tag, [`FROM ${BUSYBOX}`, ...steps, ''].join('\n'));
  const got = await convertAndList(`docker-daemon:${tag}`, path.join(dir, 'engine.sif'));
  expect(compare(got)).toEqual([...want].map(([name, w]) => [name, w]));
});
