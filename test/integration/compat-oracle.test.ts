/**
 * sifkit's library resolution against the real dynamic linker: for a
 * seeded sample of the ELF objects of real Debian images (bullseye,
 * bookworm, trixie, from debootstrap), every library `ld.so --list`
 * loads, run inside a container of that image, must be the one sifkit's
 * resolution finds (by real path), and a library ld.so cannot find must
 * be one sifkit reports missing. One image has a library only under a
 * glibc-hwcaps subdirectory: ld.so on this host takes it from there, so
 * must sifkit at this CPU's level, and a snapshot of a CPU below that
 * level makes it a missing library. Two have it only under legacy hwcaps
 * subdirectories (`haswell/` and `x86_64/`): bullseye's ld.so (glibc
 * 2.31) takes the one this CPU selects and so must sifkit; trixie's
 * (2.41) no longer searches them, and sifkit reports it missing.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hwcapsOf, imageGlibc } from '../../src/compat/check';
import { X86_LEVELS, cpuinfoFlags, cpuinfoVendor, hwcapsSubdirs, x86Level } from '../../src/compat/hwcaps';
import { resolveAll } from '../../src/compat/linker';
import type { ImageFiles } from '../../src/compat/view';
import { readCompatImage } from '../../src/compat/run';
import { runCli } from '../support/cli';
import { debianImage, imageRef, type Release } from '../support/debian-images';
import { engine, removeTestImages, runId, TEST_LABEL } from '../support/engine';
import { seedOfRun } from '../support/hostile-strings';

jest.setTimeout(1_800_000);

const HWCAPS_IMAGE = `sifkit-test/h45-hwcaps:${runId}`;
/** bullseye (glibc 2.31) and trixie (2.41) with libz only under the legacy haswell/ and x86_64/ subdirectories. */
const LEGACY_IMAGE = (r: Release) => `sifkit-test/h50-legacy-hwcaps-${r}:${runId}`;
const LIBDIR = '/usr/lib/x86_64-linux-gnu';
/** Objects sampled per image. */
const SAMPLE = 25;

/** A small seeded generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** This CPU's level as this host's ld.so (glibc 2.33 or later) reports it: the best "supported" glibc-hwcaps line. */
function ldsoLevel(): string {
  const help = execFileSync('/lib64/ld-linux-x86-64.so.2', ['--help'], { encoding: 'utf8' });
  const m = /^\s+(x86-64-v\d) \(supported, searched\)$/m.exec(help);
  return m ? m[1] : 'x86-64';
}

/** What ld.so --list loads for each object, inside a container of the image: name -> real path, or null (not found). */
function ldsoLists(image: string, objects: string[]): Map<string, Map<string, string | null>> {
  const script = [
    'for f in "$@"; do',
    '  echo "== $f"',
    '  /lib64/ld-linux-x86-64.so.2 --list "$f" 2>&1 | while read -r name arrow where rest; do',
    '    [ "$arrow" = "=>" ] || continue',
    '    if [ "$where" = not ]; then echo "$name NOTFOUND"; else echo "$name $(readlink -f "$where")"; fi',
    '  done',
    'done',
  ].join('\n');
  const out = execFileSync(
    'docker',
    ['run', '--rm', '--network=none', '--label', `${TEST_LABEL}=${runId}`, image, 'sh', '-c', script, 'sh', ...objects],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const lists = new Map<string, Map<string, string | null>>();
  let cur: Map<string, string | null> | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('== ')) lists.set(line.slice(3), (cur = new Map()));
    else if (line && cur) {
      const [name, where] = line.split(' ');
      cur.set(name, where === 'NOTFOUND' ? null : where);
    }
  }
  return lists;
}

/** What sifkit's resolution loads from each object, the same way: the closure of its needs, name -> real path or null. */
function sifkitLists(
  files: ImageFiles,
  objects: string[],
  hwcaps: { hwcaps: string[]; cacheHwcaps?: string[] },
): Map<string, Map<string, string | null>> {
  const ldLibraryPath = (files.env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d.startsWith('/'));
  const lists = new Map<string, Map<string, string | null>>();
  for (const root of objects) {
    const r = resolveAll(files.entries, files.ldconf, {
      ldLibraryPath,
      cache: files.ldCache,
      ...hwcaps,
      roots: [root],
    });
    const missing = new Set(r.breaks.filter((b) => b.kind === 'missing-library').map((b) => b.library));
    const list = new Map<string, string | null>();
    for (const [key, real] of r.resolved) list.set(key.split('\0')[1], real);
    for (const m of missing) list.set(m, null);
    // ld.so is the program interpreter, listed without "=>".
    for (const name of [...list.keys()]) if (name.startsWith('ld-linux')) list.delete(name);
    lists.set(root, list);
  }
  return lists;
}

/** A seeded sample of the image's dynamic ELF objects (not glibc's own: ld.so --list runs them as programs). */
function sample(files: ImageFiles, rand: () => number): string[] {
  const all = [...files.entries]
    .filter(
      ([p, e]) =>
        e.kind === 'file' &&
        e.elf?.machine === 62 &&
        e.elf.bits === 64 &&
        e.elf.needed.length > 0 &&
        !/\/(ld-linux|libc\.so|libc-)/.test(p),
    )
    .map(([p]) => p)
    .sort();
  const out: string[] = [];
  while (out.length < SAMPLE && all.length) out.push(all.splice(Math.floor(rand() * all.length), 1)[0]);
  return out.sort();
}

function sorted(m: Map<string, string | null> | undefined): Array<[string, string | null]> {
  return [...(m ?? new Map<string, string | null>())].sort(([a], [b]) => (a < b ? -1 : 1));
}

describe('library resolution against ld.so --list in real containers', () => {
  const rand = random(seedOfRun('compat-oracle'));
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const level = x86Level(cpuinfoFlags(cpuinfo));
  /** This host as a snapshot of it describes its CPU. */
  const here = { arch: 'x86_64', x86Level: level, cpuVendor: cpuinfoVendor(cpuinfo) };
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h45-oracle-'));
    for (const r of ['bullseye', 'bookworm', 'trixie'] as const) await debianImage(r);
    // bookworm (glibc 2.36) with libz only under glibc-hwcaps/x86-64-v2, the cache made again by ldconfig.
    execFileSync('docker', ['build', '--network=none', '--label', `${TEST_LABEL}=${runId}`, '-t', HWCAPS_IMAGE, '-'], {
      input: [
        `FROM ${imageRef('bookworm')}`,
        `RUN mkdir -p ${LIBDIR}/glibc-hwcaps/x86-64-v2 && mv ${LIBDIR}/libz.so.1* ${LIBDIR}/glibc-hwcaps/x86-64-v2/ && ldconfig`,
        '',
      ].join('\n'),
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    for (const r of ['bullseye', 'trixie'] as const)
      execFileSync(
        'docker',
        ['build', '--network=none', '--label', `${TEST_LABEL}=${runId}`, '-t', LEGACY_IMAGE(r), '-'],
        {
          input: [
            `FROM ${imageRef(r)}`,
            `RUN mkdir -p ${LIBDIR}/haswell ${LIBDIR}/x86_64 && cp -a ${LIBDIR}/libz.so.1* ${LIBDIR}/haswell/ && mv ${LIBDIR}/libz.so.1* ${LIBDIR}/x86_64/ && ldconfig`,
            '',
          ].join('\n'),
          stdio: ['pipe', 'ignore', 'inherit'],
        },
      );
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("reads this CPU's x86-64 level as this host's ld.so does", () => {
    expect(level).toBe(ldsoLevel());
  });

  it.each(['bullseye', 'bookworm', 'trixie'] as Release[])(
    'finds what ld.so --list loads, for a seeded sample of %s objects',
    async (r) => {
      const image = imageRef(r);
      const files = await readCompatImage({ kind: 'engine', ref: image }, { engine: async () => engine });
      const objects = sample(files, rand);
      expect(objects.length).toBe(SAMPLE);
      const ours = sifkitLists(files, objects, hwcapsOf(here, imageGlibc(files)));
      const theirs = ldsoLists(image, objects);
      for (const o of objects) {
        expect({ object: o, loads: sorted(ours.get(o)) }).toEqual({ object: o, loads: sorted(theirs.get(o)) });
      }
    },
  );

  it('takes a library from a glibc-hwcaps subdirectory as ld.so does, and misses it on a CPU below that level', async () => {
    const files = await readCompatImage({ kind: 'engine', ref: HWCAPS_IMAGE }, { engine: async () => engine });
    const objects = ['/usr/bin/apt-get', '/usr/bin/gpgv', '/usr/bin/python3'].filter((p) => files.entries.has(p));
    expect(objects.length).toBe(3);
    const ours = sifkitLists(files, objects, { hwcaps: hwcapsSubdirs(level, imageGlibc(files)) });
    const theirs = ldsoLists(HWCAPS_IMAGE, objects);
    for (const o of objects) {
      expect(theirs.get(o)!.get('libz.so.1')).toMatch(/\/glibc-hwcaps\/x86-64-v2\/libz\.so\.1\.[\d.]+$/);
      expect(sorted(ours.get(o))).toEqual(sorted(theirs.get(o)));
    }

    // Through the CLI: a snapshot of this host passes; the same snapshot with a CPU of the base level breaks.
    const snap = path.join(dir, 'here.json');
    expect((await runCli(['host', 'snapshot', '--bind', `${dir}/none:/opt/none`, '-o', snap])).code).toBe(0);
    const here = JSON.parse(await fs.readFile(snap, 'utf8'));
    expect(here.x86Level).toBe(level);
    const ok = await runCli(['compat', `docker-daemon:${HWCAPS_IMAGE}`, '--host', snap, '--json']);
    expect(ok.code).toBe(0);
    const old = path.join(dir, 'old-cpu.json');
    await fs.writeFile(old, JSON.stringify({ ...here, x86Level: 'x86-64' }));
    const bad = await runCli(['compat', `docker-daemon:${HWCAPS_IMAGE}`, '--host', old, '--json']);
    expect(bad.code).toBe(1);
    const breaks = JSON.parse(bad.stdout).reports[0].breaks as Array<{ kind: string; file: string; library: string }>;
    expect(breaks).toContainEqual(
      expect.objectContaining({ kind: 'missing-library', file: '/usr/bin/gpgv', library: 'libz.so.1' }),
    );
  });

  it('takes a library from the legacy hwcaps subdirectory this CPU selects before glibc 2.37, and from none after', async () => {
    // Intel from x86-64-v3 on selects haswell/ (ld.so's platform), any other x86-64 CPU x86_64/.
    const expected =
      here.cpuVendor === 'GenuineIntel' && X86_LEVELS.indexOf(level) >= X86_LEVELS.indexOf('x86-64-v3')
        ? 'haswell'
        : 'x86_64';
    const zUsers = (files: ImageFiles) =>
      [...files.entries]
        .filter(([p, e]) => e.kind === 'file' && e.elf?.needed.includes('libz.so.1') && !p.includes('/lib'))
        .map(([p]) => p)
        .sort()
        .slice(0, 3);
    const old = await readCompatImage(
      { kind: 'engine', ref: LEGACY_IMAGE('bullseye') },
      { engine: async () => engine },
    );
    const objects = zUsers(old);
    expect(objects.length).toBeGreaterThan(0);
    const ours = sifkitLists(old, objects, hwcapsOf(here, imageGlibc(old)));
    const theirs = ldsoLists(LEGACY_IMAGE('bullseye'), objects);
    for (const o of objects) {
      expect(theirs.get(o)!.get('libz.so.1')).toMatch(new RegExp(`/${expected}/libz\\.so\\.1\\.[\\d.]+$`));
      expect({ object: o, loads: sorted(ours.get(o)) }).toEqual({ object: o, loads: sorted(theirs.get(o)) });
    }

    const now = await readCompatImage({ kind: 'engine', ref: LEGACY_IMAGE('trixie') }, { engine: async () => engine });
    const later = zUsers(now);
    expect(later.length).toBeGreaterThan(0);
    const oursNow = sifkitLists(now, later, hwcapsOf(here, imageGlibc(now)));
    // trixie's ld.so --list stops at a library it cannot find, with the error ld.so gives a program.
    const said = execFileSync(
      'docker',
      ['run', '--rm', '--network=none', '--label', `${TEST_LABEL}=${runId}`, LEGACY_IMAGE('trixie')]
        .concat([
          'sh',
          '-c',
          'for f in "$@"; do echo "== $f"; /lib64/ld-linux-x86-64.so.2 --list "$f" 2>&1; done; true',
        ])
        .concat(['sh', ...later]),
      { encoding: 'utf8' },
    );
    for (const o of later) {
      const own = said.split(`== ${o}\n`)[1]?.split('\n== ')[0] ?? '';
      expect({ object: o, ldso: own.trim() }).toEqual({
        object: o,
        ldso: expect.stringContaining('libz.so.1: cannot open shared object file'),
      });
      expect(oursNow.get(o)!.get('libz.so.1')).toBeNull();
    }

    // Through the CLI: the snapshot records the CPU's maker; bullseye's image passes, trixie's breaks on libz.
    const snap = path.join(dir, 'legacy-here.json');
    expect((await runCli(['host', 'snapshot', '--bind', `${dir}/none:/opt/none`, '-o', snap])).code).toBe(0);
    expect(JSON.parse(await fs.readFile(snap, 'utf8')).cpuVendor).toBe(here.cpuVendor);
    expect((await runCli(['compat', `docker-daemon:${LEGACY_IMAGE('bullseye')}`, '--host', snap, '--json'])).code).toBe(
      0,
    );
    const bad = await runCli(['compat', `docker-daemon:${LEGACY_IMAGE('trixie')}`, '--host', snap, '--json']);
    expect(bad.code).toBe(1);
    const breaks = JSON.parse(bad.stdout).reports[0].breaks as Array<{ kind: string; library: string }>;
    expect(breaks).toContainEqual(expect.objectContaining({ kind: 'missing-library', library: 'libz.so.1' }));
  });
});
