/**
 * Host compatibility, for real: snapshots of this machine and of library
 * directories copied out of Debian bullseye, bookworm and trixie roots
 * (debootstrap, test/support/debian-images.ts), against the built CPU
 * example and those Debian images, read from SIFs (unsquashfs) and from
 * the engine (export). Then the tree: a promoted image that a new host
 * would break, listed by `compat --root`, and promote refusing it.
 */
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { runCli } from '../support/cli';
import { HOST_LIB_DIR, debianImage, hostLibraries, hostLibrarySets, withoutOpenMpi } from '../support/debian-images';

jest.setTimeout(1_800_000);

interface Report {
  compatible: boolean;
  glibc: string | null;
  hostLoaded: string[];
  breaks: Array<{
    kind: string;
    file: string;
    fileFrom: string;
    library: string;
    provider?: string;
    version?: string;
    alsoWithoutHost: boolean;
  }>;
  mpi: Array<{ library: string; ok: boolean; level: string; host: { version: string }; image: { version: string } }>;
}

async function cli(args: string[], code: number): Promise<string> {
  const r = await runCli(args);
  if (r.code !== code) throw new Error(`sifkit ${args.join(' ')}: exit ${r.code}, expected ${code}\n${r.stderr}`);
  return r.stdout;
}

async function compat(image: string, host: string, code: number, more: string[] = []): Promise<Report> {
  const doc = JSON.parse(await cli(['compat', image, '--host', host, '--json', ...more], code)) as {
    ok: boolean;
    reports: Report[];
  };
  expect(doc.ok).toBe(code === 0);
  return doc.reports[0];
}

describe('sifkit compat against real images and hosts', () => {
  let dir: string;
  let exampleSif: string;
  /** The example by image ID: others may build the same tag meanwhile. */
  let EXAMPLE: string;
  let hereSnapshot: string;
  /** Directories standing for hosts' library directories. */
  const hosts: Record<string, string> = {};

  async function snapshot(name: string, bind: string): Promise<string> {
    const out = path.join(dir, `${name}.json`);
    await cli(['host', 'snapshot', '--bind', bind, '-o', out], 0);
    return out;
  }

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-compat-'));
    EXAMPLE = JSON.parse(await cli(['build', 'mpi4py-cpu', '--json'], 0)).images[0].imageId;
    exampleSif = path.join(dir, 'example.sif');
    // lz4: gzip costs about 150 s of CPU for the example's 800 MB, lz4 about 3 s. compat reads an lz4 SIF through
    // unsquashfs, a gzip one with sifkit's own squashfs reader: the example covers the first here, the default
    // (gzip) bookworm-nompi.sif below the second, each checked against the same image read from the engine.
    await cli(['convert', `docker-daemon:${EXAMPLE}`, '-o', exampleSif, '--compression', 'lz4'], 0);
    for (const r of ['bullseye', 'bookworm', 'trixie'] as const) await debianImage(r);
    await withoutOpenMpi('bookworm');
    hosts.trixieOpenMpi = path.join(dir, 'host-trixie-openmpi');
    hosts.bookwormOpenMpi = path.join(dir, 'host-bookworm-openmpi');
    hosts.bullseyeOpenMpi = path.join(dir, 'host-bullseye-openmpi');
    hosts.bullseyeMpich = path.join(dir, 'host-bullseye-mpich');
    await hostLibraries('sifkit-test/debian-trixie:mpi', ['libmpi.so.40'], hosts.trixieOpenMpi);
    await hostLibraries('sifkit-test/debian-bookworm:mpi', ['libmpi.so.40'], hosts.bookwormOpenMpi);
    // Both of bullseye's from one copy of its library directory.
    await hostLibrarySets('sifkit-test/debian-bullseye:mpi', [
      { libs: ['libmpi.so.40'], dest: hosts.bullseyeOpenMpi },
      { libs: ['libmpich.so.12', 'libmpi.so.12'], dest: hosts.bullseyeMpich },
    ]);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('passes the example against a snapshot of this machine with the example module binds', async () => {
    const modDir = path.join(dir, 'module');
    await cli(['module', exampleSif, '--out', modDir], 0);
    const [lua] = (await fs.readdir(path.join(modDir, 'modules', 'mpi4py-cpu'))).map((f) =>
      path.join(modDir, 'modules', 'mpi4py-cpu', f),
    );
    hereSnapshot = path.join(dir, 'here.json');
    await cli(['host', 'snapshot', '--module', lua, '-o', hereSnapshot], 0);
    const snap = JSON.parse(await fs.readFile(hereSnapshot, 'utf8'));
    // What this machine has of LUMI's binds: no /opt/cray, no libcxi; /var/spool/slurmd is user data.
    expect(snap.binds.map((b: { target: string }) => b.target)).toEqual(
      expect.arrayContaining(['/opt/cray', '/usr/lib64/libcxi.so.1', '/runscripts', '/appl']),
    );
    expect(snap.binds.find((b: { target: string }) => b.target === '/opt/cray').kind).toBe('missing');
    expect(snap.glibc.version).toMatch(/^2\.\d+$/);
    const sif = await compat(exampleSif, hereSnapshot, 0);
    expect(sif.compatible).toBe(true);
    expect(sif.breaks).toEqual([]);
    const engine = await compat(`docker-daemon:${EXAMPLE}`, hereSnapshot, 0);
    expect(engine).toEqual({ ...sif, image: `docker-daemon:${EXAMPLE}` });
  });

  it('catches host libraries that need a newer glibc than the image has (trixie MPI bound into bullseye)', async () => {
    const host = await snapshot('trixie', `${hosts.trixieOpenMpi}:${HOST_LIB_DIR}`);
    const r = await compat('docker-daemon:sifkit-test/debian-bullseye:mpi', host, 1);
    // glibc 2.31 defines no symbol version of its own: its newest is GLIBC_2.30.
    expect(r.glibc).toBe('2.30');
    const glibc = r.breaks.filter((b) => b.kind === 'missing-version' && b.library === 'libc.so.6');
    expect(glibc.length).toBeGreaterThan(0);
    for (const b of glibc) {
      expect(b).toMatchObject({
        fileFrom: 'host',
        provider: '/usr/lib/x86_64-linux-gnu/libc-2.31.so',
        alsoWithoutHost: false,
      });
      expect(b.file.startsWith(`${HOST_LIB_DIR}/`)).toBe(true);
      expect(Number(b.version!.split('.')[1])).toBeGreaterThan(30);
    }
    expect(glibc.map((b) => b.file)).toContain(`${HOST_LIB_DIR}/libmpi.so.40.40.7`);
    // The table names the file, the library and the version.
    const table = await runCli(['compat', 'docker-daemon:sifkit-test/debian-bullseye:mpi', '--host', host]);
    expect(table.code).toBe(1);
    // At 100 columns a long file name is cut in its middle; its start and end stay.
    expect(table.stdout).toMatch(/\/opt\/cray\/lib\/\S*\.so\.\S* \(host\)/);
    expect(table.stdout).toMatch(/libc\.so\.6 +GLIBC_2\.3[2-9]/);
  });

  it('a snapshot with escape sequences, separators and bidi controls in its strings: the table and stderr show them escaped, one row a line; the JSON keeps them and fits its schema', async () => {
    const snap = JSON.parse(
      await fs.readFile(await snapshot('hostile', `${hosts.trixieOpenMpi}:${HOST_LIB_DIR}`), 'utf8'),
    );
    const odd = '\x1b[2J\r\u2028\u202e\x07';
    snap.host = `evil${odd}host`;
    for (const b of snap.binds)
      for (const f of b.files)
        if (f.elf?.requires.length) {
          f.elf.needed.push(`libodd${odd}.so`);
          f.elf.requires[0].versions.push(`GLIBC_9.9${odd}`);
        }
    const hostile = path.join(dir, 'hostile.json');
    await fs.writeFile(hostile, JSON.stringify(snap));
    const image = 'docker-daemon:sifkit-test/debian-bullseye:mpi';
    const text = await runCli(['compat', image, '--host', hostile]);
    expect(text.code).toBe(1);
    const raw = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]/;
    expect(text.stdout).not.toMatch(raw);
    expect(text.stderr).not.toMatch(raw);
    expect(text.stdout).toContain('libodd\\x1b[2J\\x0d\\u{2028}\\u{202e}\\x07.so');
    expect(text.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^evil\\x1b\[2J.*host \(hostile\.json\): .* breaks$/),
    ]);
    const doc = JSON.parse((await runCli(['compat', image, '--host', hostile, '--json'])).stdout);
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    const valid = ajv.compile(
      JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'docs', 'schemas', 'compat.schema.json'), 'utf8')),
    );
    expect([valid(doc), valid.errors ?? []]).toEqual([true, []]);
    const r = doc.reports[0] as Report;
    expect(r.breaks.map((b) => b.library)).toContain(`libodd${odd}.so`);
    expect(r.breaks.map((b) => b.version)).toContain(`GLIBC_9.9${odd}`);
  });

  it("catches the image's mpi4py needing a SONAME the host's MPI lacks (Open MPI image, MPICH host), read from a SIF", async () => {
    const sif = path.join(dir, 'bookworm-nompi.sif');
    const nompi = `docker-daemon:${await withoutOpenMpi('bookworm')}`;
    await cli(['convert', nompi, '-o', sif], 0);
    const mpich = await snapshot('mpich', `${hosts.bullseyeMpich}:${HOST_LIB_DIR}`);
    const r = await compat(sif, mpich, 1);
    // sifkit's own squashfs reader (a gzip SIF) finds what the engine's export gives.
    expect(await compat(nompi, mpich, 1)).toEqual({ ...r, image: nompi });
    expect(r.breaks).toContainEqual(
      expect.objectContaining({
        kind: 'missing-library',
        file: '/usr/lib/python3/dist-packages/mpi4py/MPI.cpython-311-x86_64-linux-gnu.so',
        fileFrom: 'image',
        library: 'libmpi.so.40',
      }),
    );
    // The same image with the host's Open MPI of its own release works, and loads it from the host.
    const openmpi = await snapshot('openmpi', `${hosts.bookwormOpenMpi}:${HOST_LIB_DIR}`);
    const ok = await compat(sif, openmpi, 0);
    expect(ok.hostLoaded).toContain(`${HOST_LIB_DIR}/libmpi.so.40.30.4`);
  });

  it("holds MPI libraries to Sarus's levels against the image's own copy", async () => {
    const older = await snapshot('bullseye-openmpi', `${hosts.bullseyeOpenMpi}:${HOST_LIB_DIR}`);
    const image = 'docker-daemon:sifkit-test/debian-bookworm:mpi';
    expect((await compat(image, older, 0, ['--mpi-level', 'major'])).mpi).toContainEqual(
      expect.objectContaining({
        library: 'libmpi',
        ok: true,
        host: { path: `${HOST_LIB_DIR}/libmpi.so.40.30.0`, version: '40.30.0' },
        image: { path: '/usr/lib/x86_64-linux-gnu/libmpi.so.40.30.4', version: '40.30.4' },
      }),
    );
    expect((await compat(image, older, 1, ['--mpi-level', 'full'])).mpi).toContainEqual(
      expect.objectContaining({ library: 'libmpi', ok: false, level: 'full' }),
    );
    const same = await snapshot('bookworm-openmpi', `${hosts.bookwormOpenMpi}:${HOST_LIB_DIR}`);
    expect((await compat(image, same, 0, ['--mpi-level', 'strict'])).mpi).toContainEqual(
      expect.objectContaining({ library: 'libmpi', ok: true, level: 'strict' }),
    );
  });

  it('lists what a new host would break across the tree, and promote refuses a breaking image', async () => {
    const root = path.join(dir, 'tree');
    await fs.mkdir(root);
    const staged = JSON.parse(await cli(['stage', exampleSif, '--untested', '--root', root, '--json'], 0)).staged
      .name as string;
    await cli(['promote', staged, '--to', 'all', '--root', root], 0);
    // The new host: trixie's Open MPI in /opt/cray/pe/lib64, which the example's LD_LIBRARY_PATH names.
    const newHost = path.join(dir, 'new-host');
    await fs.mkdir(path.join(newHost, 'pe'), { recursive: true });
    await fs.cp(hosts.trixieOpenMpi, path.join(newHost, 'pe', 'lib64'), { recursive: true, verbatimSymlinks: true });
    const next = await snapshot('next', `${newHost}:/opt/cray`);
    const doc = JSON.parse(await cli(['compat', '--root', root, '--host', hereSnapshot, '--host', next, '--json'], 1));
    expect(doc.images).toHaveLength(1);
    expect(doc.images[0].name).toBe(staged);
    expect(doc.images[0].results.map((x: { compatible: boolean }) => x.compatible)).toEqual([true, false]);
    expect(doc.images[0].results[1].breaks).toContainEqual(
      expect.objectContaining({ file: '/opt/cray/pe/lib64/libmpi.so.40.40.7', library: 'libc.so.6', fileFrom: 'host' }),
    );
    const table = await runCli(['compat', '--root', root, '--host', next]);
    expect(table.stdout).toContain('0 of 1 promoted images work');

    // The tree promises to serve the new host: promoting the image again is refused, unless told.
    await cli(['host', 'record', next, '--name', 'next', '--root', root], 0);
    await fs.rm(path.join(root, 'sif-images'), { recursive: true });
    await fs.rm(path.join(root, 'easybuild-sif-images'), { recursive: true });
    const refused = await runCli(['promote', staged, '--to', 'all', '--root', root]);
    expect(refused.code).toBe(3);
    expect(refused.stderr.trim().split('\n')[0]).toMatch(
      new RegExp(
        `^sifkit: error: ${staged.replace(/\./g, '\\.')} breaks on host next: /opt/cray/pe/lib64/\\S+ needs GLIBC_2\\.\\d+ from libc\\.so\\.6`,
      ),
    );
    await expect(fs.readdir(path.join(root, 'sif-images'))).rejects.toThrow(/ENOENT/);
    await cli(['promote', staged, '--to', 'all', '--root', root, '--no-compat'], 0);
  });

  it('refuses a snapshot that is not one, in one line', async () => {
    const bad = path.join(dir, 'bad.json');
    await fs.writeFile(bad, JSON.stringify({ kind: 'sifkit-host-snapshot', version: 1 }));
    const r = await runCli(['compat', exampleSif, '--host', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
