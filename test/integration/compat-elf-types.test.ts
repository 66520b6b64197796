/**
 * Two questions of the linker's view decided by glibc's ld.so itself, on
 * ELF files gcc links here (no image, no engine): each scenario is run
 * for real, and sifkit's resolution over the same files must agree with
 * what ld.so did.
 * - An object of the right class and machine but the wrong type where a
 *   library is searched (an ET_REL `.o`, an ET_CORE, an ET_EXEC) stops
 *   the search with an error, as a wrong-arch file does not: "only ET_DYN
 *   and ET_EXEC can be loaded", "cannot dynamically load executable".
 * - A private library that finds its dependency only through its
 *   program's DT_RPATH loads fine and is no break; with a DT_RUNPATH of its
 *   own, or under a program with DT_RUNPATH instead of DT_RPATH, the
 *   program's path no longer applies to its DT_NEEDED and it is one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveAll, type Break } from '../../src/compat/linker';
import type { ViewEntry } from '../../src/compat/view';
import { readElfFile } from '../../src/elf/file';

jest.setTimeout(120_000);

const LIBDIR = '/usr/lib/x86_64-linux-gnu';
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-elf-types-'));
  await fs.writeFile(path.join(dir, 'dep.c'), 'int dep(void) { return 42; }\n');
  await fs.writeFile(path.join(dir, 'priv.c'), 'int dep(void);\nint priv(void) { return dep(); }\n');
  await fs.writeFile(path.join(dir, 'main.c'), 'int dep(void);\nint main(void) { return dep() == 42 ? 0 : 1; }\n');
  await fs.writeFile(
    path.join(dir, 'main-priv.c'),
    'int priv(void);\nint main(void) { return priv() == 42 ? 0 : 1; }\n',
  );
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

function gcc(...args: string[]): void {
  execFileSync('gcc', args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The view of `files` (absolute paths here) and this host's libc and ld.so, as an image would give it. */
async function viewOf(files: string[]): Promise<Map<string, ViewEntry>> {
  const view = new Map<string, ViewEntry>([['/lib', { kind: 'link', link: 'usr/lib', origin: 'image' }]]);
  const dirs = (p: string) => {
    for (let d = path.dirname(p); d !== '/'; d = path.dirname(d)) view.set(d, { kind: 'dir', origin: 'image' });
  };
  for (const f of [...files, `${LIBDIR}/libc.so.6`, `${LIBDIR}/ld-linux-x86-64.so.2`]) {
    dirs(f);
    view.set(f, { kind: 'file', elf: await readElfFile(f), origin: 'image' });
  }
  return view;
}

/** What ld.so did with the program: ok, or its error line. */
function run(program: string): string {
  const r = spawnSync(program, { encoding: 'utf8' });
  return r.status === 0 ? 'ok' : r.stderr.trim().replace(/^.*error while loading shared libraries: /, '');
}

const brief = (b: Break) => ({ file: b.file, library: b.library, provider: b.provider });

describe('a library of the wrong ELF type stops the search, as ld.so does', () => {
  it.each([
    ['an object file (ET_REL)', 'only ET_DYN and ET_EXEC can be loaded'],
    ['a core file (ET_CORE)', 'only ET_DYN and ET_EXEC can be loaded'],
    ['an executable (ET_EXEC)', 'cannot dynamically load executable'],
  ])('%s first in the RPATH, a good copy after it', async (what, said) => {
    const t = what.match(/ET_(\w+)/)![1].toLowerCase();
    const [bad, good] = [path.join(dir, t, 'bad'), path.join(dir, t, 'good')];
    await fs.mkdir(bad, { recursive: true });
    await fs.mkdir(good, { recursive: true });
    gcc('-shared', '-fPIC', '-o', `${good}/libdep.so`, 'dep.c');
    if (t === 'rel') gcc('-c', '-fPIC', '-o', `${bad}/libdep.so`, 'dep.c');
    if (t === 'exec') gcc('-no-pie', '-o', `${bad}/libdep.so`, 'dep.c', 'main.c');
    if (t === 'core') {
      // A shared object with e_type ET_CORE (4): all else as the good copy.
      const b = await fs.readFile(`${good}/libdep.so`);
      b.writeUInt16LE(4, 16);
      await fs.writeFile(`${bad}/libdep.so`, b);
    }
    const main = path.join(dir, t, 'main');
    gcc('-o', main, 'main.c', `-L${good}`, '-ldep', `-Wl,--disable-new-dtags,-rpath,${bad}:${good}`);
    // ld.so stops at the bad copy: the good one after it is never reached.
    expect(run(main)).toContain(said);
    const r = resolveAll(await viewOf([main, `${bad}/libdep.so`, `${good}/libdep.so`]), new Map(), {
      ldLibraryPath: [],
    });
    expect(r.breaks.map(brief)).toEqual([{ file: main, library: 'libdep.so', provider: `${bad}/libdep.so` }]);
  });
});

describe("a private library and its program's RPATH", () => {
  /** bin/main -> priv/libpriv.so -> dep/libdep.so, the last found only through the paths named. */
  async function scenario(name: string, mainTags: string, privRunpath: boolean) {
    const root = path.join(dir, name);
    for (const d of ['bin', 'priv', 'dep']) await fs.mkdir(path.join(root, d), { recursive: true });
    gcc('-shared', '-fPIC', '-o', `${root}/dep/libdep.so`, 'dep.c');
    gcc(
      '-shared',
      '-fPIC',
      '-o',
      `${root}/priv/libpriv.so`,
      'priv.c',
      `-L${root}/dep`,
      '-ldep',
      ...(privRunpath ? ['-Wl,--enable-new-dtags,-rpath,$ORIGIN/../nowhere'] : []),
    );
    gcc(
      '-o',
      `${root}/bin/main`,
      'main-priv.c',
      `-L${root}/priv`,
      '-lpriv',
      `-Wl,${mainTags},-rpath,$ORIGIN/../priv:$ORIGIN/../dep`,
      // libpriv's own dependency, found at link time only.
      `-Wl,-rpath-link,${root}/dep`,
    );
    const files = [`${root}/bin/main`, `${root}/priv/libpriv.so`, `${root}/dep/libdep.so`];
    return {
      root,
      said: run(`${root}/bin/main`),
      r: resolveAll(await viewOf(files), new Map(), { ldLibraryPath: [] }),
    };
  }

  it("loads through the program's DT_RPATH: no break, though the library alone finds nothing", async () => {
    const { said, r } = await scenario('rpath', '--disable-new-dtags', false);
    expect(said).toBe('ok');
    expect(r.breaks).toEqual([]);
  });
  it("with a DT_RUNPATH of its own, the program's DT_RPATH no longer applies to its DT_NEEDED: a break", async () => {
    const { root, said, r } = await scenario('own-runpath', '--disable-new-dtags', true);
    expect(said).toMatch(/^libdep\.so: cannot open shared object file/);
    expect(r.breaks.map(brief)).toEqual([
      { file: `${root}/priv/libpriv.so`, library: 'libdep.so', provider: undefined },
    ]);
  });
  it("under a program with DT_RUNPATH (not DT_RPATH), the program's path is its own DT_NEEDED's only: a break", async () => {
    const { root, said, r } = await scenario('program-runpath', '--enable-new-dtags', false);
    expect(said).toMatch(/^libdep\.so: cannot open shared object file/);
    expect(r.breaks.map(brief)).toEqual([
      { file: `${root}/priv/libpriv.so`, library: 'libdep.so', provider: undefined },
    ]);
  });
});
