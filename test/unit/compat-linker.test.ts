/**
 * The linker's view and the bind parsers, on views built by hand: the
 * search order ld.so follows, binds hiding the image's files, links in
 * directories, $ORIGIN, version checks and Sarus's MPI levels.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bindsFromEasyconfig, bindsFromModule, parseBindList } from '../../src/compat/binds';
import { checkImage } from '../../src/compat/check';
import { resolveAll } from '../../src/compat/linker';
import { overlay, resolvePath, type ImageFiles, type ViewEntry } from '../../src/compat/view';
import { compareAt, soVersion } from '../../src/compat/mpi';
import { takeSnapshot } from '../../src/compat/snapshot';
import type { ElfInfo } from '../../src/elf/format';
import { hostSnapshotSchema, type HostSnapshot } from '../../src/validate/schemas/host';

const elf = (o: Partial<ElfInfo>): ElfInfo => ({
  bits: 64,
  machine: 62,
  type: 'dyn',
  needed: [],
  rpath: [],
  runpath: [],
  requires: [],
  defines: [],
  ...o,
});
const file = (e: Partial<ElfInfo>): ViewEntry => ({ kind: 'file', elf: elf(e), origin: 'image' });
const link = (to: string): ViewEntry => ({ kind: 'link', link: to, origin: 'image' });
const dir: ViewEntry = { kind: 'dir', origin: 'image' };

function image(entries: Record<string, ViewEntry>, env: Record<string, string> = {}): ImageFiles {
  return {
    entries: new Map(Object.entries(entries)),
    ldconf: new Map([
      ['/etc/ld.so.conf', 'include /etc/ld.so.conf.d/*.conf\n'],
      ['/etc/ld.so.conf.d/x.conf', '/opt/extra\n'],
    ]),
    env,
  };
}

const libc = file({ soname: 'libc.so.6', defines: ['GLIBC_2.2.5', 'GLIBC_2.17', 'GLIBC_2.31'] });
const base = {
  '/usr': dir,
  '/usr/lib': dir,
  '/usr/lib/x86_64-linux-gnu': dir,
  '/lib': link('usr/lib'),
  '/opt': dir,
  '/opt/extra': dir,
  '/opt/app': dir,
  '/opt/app/lib': dir,
  '/opt/app/bin': dir,
  '/usr/lib/x86_64-linux-gnu/libc.so.6': libc,
};

function snapshot(binds: HostSnapshot['binds'], ldLibraryPath: string[] = []): HostSnapshot {
  return {
    kind: 'sifkit-host-snapshot',
    version: 1,
    host: 'h',
    takenAt: '2026-01-01T00:00:00Z',
    sifkit: '0',
    arch: 'x86_64',
    from: { kind: 'bind' },
    glibc: null,
    ldLibraryPath,
    binds,
  };
}

describe('bind lists', () => {
  it('reads src[:dst[:opts]] and refuses relative paths and ..', () => {
    expect(parseBindList('/a,/b/:/c:ro, /d//e')).toEqual([
      { spec: '/a', source: '/a', target: '/a' },
      { spec: '/b/:/c:ro', source: '/b', target: '/c' },
      { spec: '/d//e', source: '/d/e', target: '/d/e' },
    ]);
    expect(() => parseBindList('x:/y')).toThrow(/not an absolute path/);
    expect(() => parseBindList('/x/../y')).toThrow(/has \.\./);
    expect(() => parseBindList('/x:/y:zz')).toThrow(/src\[:dst\[:ro\|rw\]\]/);
  });

  it('reads a module (every Lua string form) and an EasyConfig', () => {
    const lua =
      'setenv("SINGULARITY_BIND", "/opt/cray,/usr/lib64/libcxi.so.1")\nappend_path([==[SINGULARITY_BIND]==], \'/x:/y\', ",")\nsetenv("SINGULARITYENV_LD_LIBRARY_PATH", [[/opt/cray/lib]])';
    expect(bindsFromModule(lua, 'm.lua')).toEqual({
      binds: [
        { spec: '/opt/cray', source: '/opt/cray', target: '/opt/cray' },
        { spec: '/usr/lib64/libcxi.so.1', source: '/usr/lib64/libcxi.so.1', target: '/usr/lib64/libcxi.so.1' },
        { spec: '/x:/y', source: '/x', target: '/y' },
      ],
      ldLibraryPath: ['/opt/cray/lib'],
    });
    const eb = "modextravars = {\n    'SINGULARITY_BIND': '/opt/cray,%(installdir)s/runscripts:/runscripts',\n}\n";
    expect(bindsFromEasyconfig(eb, 'x.eb', '/inst').binds.map((b) => `${b.source}>${b.target}`)).toEqual([
      '/opt/cray>/opt/cray',
      '/inst/runscripts>/runscripts',
    ]);
    expect(() => bindsFromModule('setenv("PATH", "/x")', 'm.lua')).toThrow('m.lua sets no SINGULARITY_BIND');
  });
});

describe('the linker view', () => {
  it('follows links in any component, relative and absolute', () => {
    const v = new Map(
      Object.entries({
        ...base,
        '/usr/lib/x86_64-linux-gnu/libz.so.1': link('/lib/x86_64-linux-gnu/libz.so.1.3'),
        '/usr/lib/x86_64-linux-gnu/libz.so.1.3': file({}),
      }),
    );
    expect(resolvePath(v, '/lib/x86_64-linux-gnu/libz.so.1')).toBe('/usr/lib/x86_64-linux-gnu/libz.so.1.3');
    expect(resolvePath(v, '/lib/x86_64-linux-gnu/nothing')).toBeUndefined();
    v.set('/loop', link('/loop'));
    expect(resolvePath(v, '/loop')).toBeUndefined();
  });

  it('searches RUNPATH with $ORIGIN, LD_LIBRARY_PATH, ld.so.conf and the default dirs; a wrong class is skipped', () => {
    const img = image({
      ...base,
      '/opt/app/bin/tool': file({
        type: 'exec',
        needed: ['liba.so.1', 'libb.so.2', 'libc.so.6'],
        runpath: ['$ORIGIN/../lib'],
      }),
      '/opt/app/lib/liba.so.1': file({ soname: 'liba.so.1', needed: ['libe.so.1'] }),
      '/opt/extra/libe.so.1': file({ soname: 'libe.so.1' }),
      '/opt/extra/libb.so.2': file({ soname: 'libb.so.2', bits: 32 }),
    });
    const r = resolveAll(img.entries, img.ldconf, { ldLibraryPath: [] });
    expect(r.resolved.get('/opt/app/bin/tool\0liba.so.1')).toBe('/opt/app/lib/liba.so.1');
    expect(r.resolved.get('/opt/app/lib/liba.so.1\0libe.so.1')).toBe('/opt/extra/libe.so.1');
    expect(r.breaks).toEqual([
      {
        kind: 'missing-library',
        file: '/opt/app/bin/tool',
        fileFrom: 'image',
        library: 'libb.so.2',
        neededBy: '/opt/app/bin/tool',
        roots: 1,
      },
    ]);
  });

  // Each case below was first run for real on this machine (gcc, glibc 2.36's ld.so) and ld.so's answer taken as the truth.
  it("RPATH of every loader up to the executable, each only when it has no RUNPATH; a RUNPATH object's RPATH is ignored", () => {
    const img = image({
      ...base,
      '/opt/app/a': dir,
      '/opt/app/b': dir,
      '/opt/app/c': dir,
      // tool (RUNPATH $ORIGIN/../a) -> liba (RPATH b:c) -> libb (neither) -> libc3: found through liba's RPATH.
      '/opt/app/bin/tool': file({ type: 'exec', needed: ['liba.so', 'libc.so.6'], runpath: ['$ORIGIN/../a'] }),
      '/opt/app/a/liba.so': file({ needed: ['libb.so'], rpath: ['$ORIGIN/../b', '$ORIGIN/../c'] }),
      '/opt/app/b/libb.so': file({ needed: ['libc3.so'] }),
      '/opt/app/c/libc3.so': file({}),
      // old (RPATH and RUNPATH both: the RPATH is ignored) -> libd, only in the RPATH's directory.
      '/opt/app/bin/old': file({ type: 'exec', needed: ['libd.so'], rpath: ['/opt/app/c'], runpath: ['/opt/app/a'] }),
      '/opt/app/c/libd.so': file({}),
    });
    // Every object a root by default: libb, loaded by tool, is checked as tool loads it (liba's RPATH), not alone.
    const r = resolveAll(img.entries, img.ldconf, { ldLibraryPath: [] });
    expect(r.resolved.get('/opt/app/b/libb.so\0libc3.so')).toBe('/opt/app/c/libc3.so');
    expect(r.breaks.map((b) => [b.file, b.library])).toEqual([['/opt/app/bin/old', 'libd.so']]);
  });

  it('a name an object already loaded answers to (its SONAME) is that object, with no search: a file whose SONAME differs from its name', () => {
    const img = image({
      ...base,
      // tool needs libfoo.so.1, a file whose SONAME is libbar.so.2; libq needs libbar.so.2, which no file is named.
      '/opt/app/bin/tool': file({ type: 'exec', needed: ['libfoo.so.1', 'libq.so'], runpath: ['$ORIGIN/../lib'] }),
      '/opt/app/lib/libfoo.so.1': file({ soname: 'libbar.so.2' }),
      '/opt/app/lib/libq.so': file({ needed: ['libbar.so.2'], runpath: ['$ORIGIN'] }),
      // alone, libq has nothing loaded under that name: missing.
      '/opt/app/bin/lone': file({ type: 'exec', needed: ['libq.so'], runpath: ['$ORIGIN/../lib'] }),
    });
    const r = resolveAll(img.entries, img.ldconf, { ldLibraryPath: [], roots: ['/opt/app/bin/tool'] });
    expect(r.resolved.get('/opt/app/lib/libq.so\0libbar.so.2')).toBe('/opt/app/lib/libfoo.so.1');
    expect(r.breaks).toEqual([]);
    const lone = resolveAll(img.entries, img.ldconf, { ldLibraryPath: [], roots: ['/opt/app/bin/lone'] });
    expect(lone.breaks.map((b) => [b.file, b.library])).toEqual([['/opt/app/lib/libq.so', 'libbar.so.2']]);
  });

  it('a version is checked in the library it names, not in another that defines it; one required of a library not needed directly is taken from what the process loaded, else missing', () => {
    const foo = file({ soname: 'libfoo.so.1', defines: ['libfoo.so.1', 'FOO_1'] });
    const img = image({
      ...base,
      '/opt/app/lib/libfoo.so.1': foo,
      // libbar defines FOO_2, libfoo does not: ld.so says "version `FOO_2' not found (required by tool)".
      '/opt/app/lib/libbar.so': file({ defines: ['libbar.so', 'FOO_2'] }),
      '/opt/app/bin/tool': file({
        type: 'exec',
        needed: ['libfoo.so.1', 'libbar.so'],
        runpath: ['$ORIGIN/../lib'],
        requires: [{ file: 'libfoo.so.1', versions: ['FOO_2'] }],
      }),
      // libz requires FOO_1 of libfoo.so.1 without needing it: tool2 loads libfoo, so it holds; tool3 does not.
      '/opt/app/lib/libz.so': file({ requires: [{ file: 'libfoo.so.1', versions: ['FOO_1'] }] }),
      '/opt/app/bin/tool2': file({ type: 'exec', needed: ['libz.so', 'libfoo.so.1'], runpath: ['$ORIGIN/../lib'] }),
      '/opt/app/bin/tool3': file({ type: 'exec', needed: ['libz.so'], runpath: ['$ORIGIN/../lib'] }),
    });
    const r = resolveAll(img.entries, img.ldconf, { ldLibraryPath: [] });
    expect(r.breaks.map((b) => [b.kind, b.file, b.library, b.version ?? ''])).toEqual([
      ['missing-version', '/opt/app/bin/tool', 'libfoo.so.1', 'FOO_2'],
      ['missing-library', '/opt/app/lib/libz.so', 'libfoo.so.1', ''],
    ]);
    expect(r.breaks[1].neededBy).toBe('/opt/app/bin/tool3');
  });

  it('a file at a searched path that is no loadable ELF (text, cut short) stops the search there, as ld.so does; another class does not', async () => {
    const notElf: ViewEntry = { kind: 'file', origin: 'image' };
    const img = image({
      ...base,
      '/opt/app/b': dir,
      '/opt/app/c': dir,
      '/opt/app/bin/tool': file({ type: 'exec', needed: ['libc3.so', 'libw.so'], rpath: ['/opt/app/b', '/opt/app/c'] }),
      // ld.so: "file too short" / "invalid ELF header"; the good copy in c is never reached.
      '/opt/app/b/libc3.so': notElf,
      '/opt/app/c/libc3.so': file({}),
      // a 32-bit copy first is passed over (dl-load.c: another class is not an error).
      '/opt/app/b/libw.so': file({ bits: 32, machine: 3 }),
      '/opt/app/c/libw.so': file({}),
    });
    const r = resolveAll(img.entries, img.ldconf, { ldLibraryPath: [], roots: ['/opt/app/bin/tool'] });
    expect(r.breaks).toEqual([
      expect.objectContaining({ kind: 'missing-library', library: 'libc3.so', provider: '/opt/app/b/libc3.so' }),
    ]);
    expect(r.resolved.get('/opt/app/bin/tool\0libw.so')).toBe('/opt/app/c/libw.so');
    // The host side: a snapshot records such a file (no ELF facts), so the bind's copy stops the search too.
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h61-notelf-'));
    try {
      await fs.writeFile(path.join(tmp, 'libc3.so'), 'INPUT(-lc3)\n');
      const real = await fs.readFile('/lib/x86_64-linux-gnu/libc.so.6');
      await fs.writeFile(path.join(tmp, 'libcut.so.1'), real.subarray(0, 100));
      const warned: string[] = [];
      const snap = await takeSnapshot([{ spec: `${tmp}:/opt/app/b`, source: tmp, target: '/opt/app/b' }], {
        from: { kind: 'bind' },
        warn: (l) => warned.push(l),
      });
      expect(hostSnapshotSchema.parse(snap).binds[0].files).toEqual([
        { path: '/opt/app/b/libc3.so' },
        { path: '/opt/app/b/libcut.so.1' },
      ]);
      expect(warned).toEqual([
        expect.stringMatching(/libcut\.so\.1: .*; recorded as a file the dynamic linker cannot load$/),
      ]);
      const host = resolveAll(overlay(img, snap), img.ldconf, { ldLibraryPath: [], roots: ['/opt/app/bin/tool'] });
      expect(host.breaks).toEqual([
        expect.objectContaining({ library: 'libc3.so', provider: '/opt/app/b/libc3.so', providerFrom: 'host' }),
      ]);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  it('lets a bind hide the image files under it and finds the host ones instead; a missing version is a break', () => {
    const img = image(
      {
        ...base,
        '/opt/cray': dir,
        '/opt/cray/libmpi.so.12': file({ soname: 'libmpi.so.12', defines: ['MPI_1'] }),
        '/opt/app/lib/mpi.so': file({
          needed: ['libmpi.so.12', 'libc.so.6'],
          requires: [
            { file: 'libmpi.so.12', versions: ['MPI_1'] },
            { file: 'libc.so.6', versions: ['GLIBC_2.17'] },
          ],
        }),
      },
      { LD_LIBRARY_PATH: '/opt/cray' },
    );
    const host = snapshot([
      {
        spec: '/h:/opt/cray',
        source: '/h',
        target: '/opt/cray',
        kind: 'directory',
        files: [
          { path: '/opt/cray/libmpi.so.12', link: 'libmpi.so.12.5.0' },
          {
            path: '/opt/cray/libmpi.so.12.5.0',
            elf: elf({
              soname: 'libmpi.so.12',
              needed: ['libc.so.6'],
              requires: [{ file: 'libc.so.6', versions: ['GLIBC_2.34'] }],
              defines: ['MPI_2'],
            }),
          },
        ],
      },
    ]);
    const view = overlay(img, host);
    expect(view.has('/opt/cray/libmpi.so.12.5.0')).toBe(true);
    const rep = checkImage('img', img, host);
    expect(rep.compatible).toBe(false);
    expect(rep.glibc).toBe('2.31');
    expect(rep.hostLoaded).toEqual(['/opt/cray/libmpi.so.12.5.0']);
    expect(rep.breaks.map((b) => [b.file, b.library, b.version, b.providerFrom, b.alsoWithoutHost])).toEqual([
      ['/opt/app/lib/mpi.so', 'libmpi.so.12', 'MPI_1', 'host', false],
      ['/opt/cray/libmpi.so.12.5.0', 'libc.so.6', 'GLIBC_2.34', 'image', false],
    ]);
    // The image's own copy, hidden by the bind, is compared at Sarus's levels: 12.5.0 on the host, 12 in the image.
    expect(rep.mpi).toEqual([
      {
        library: 'libmpi',
        host: { path: '/opt/cray/libmpi.so.12.5.0', version: '12.5.0' },
        image: { path: '/opt/cray/libmpi.so.12', version: '12' },
        level: 'major',
        ok: true,
      },
    ]);
  });

  it('an MPI library bound in that cannot be compared is not compatible: no SONAME and no version, or another library under its name', () => {
    const img = image({
      ...base,
      '/usr/lib/x86_64-linux-gnu/libmpi.so.40.30.4': file({ soname: 'libmpi.so.40' }),
      '/usr/lib/x86_64-linux-gnu/libmpi.so.40': link('libmpi.so.40.30.4'),
      '/usr/lib/x86_64-linux-gnu/libmpi.so': link('libmpi.so.40.30.4'),
    });
    const bound = (target: string, e: Partial<ElfInfo>) =>
      checkImage(
        'img',
        img,
        snapshot([
          { spec: `/h:${target}`, source: '/h', target, kind: 'file', files: [{ path: target, elf: elf(e) }] },
        ]),
      ).mpi.map((m) => [m.host.version, m.ok, m.why]);
    const lib = '/usr/lib/x86_64-linux-gnu/';
    // No SONAME: its file name gives the version, as it does to ld.so and Sarus.
    expect(bound(`${lib}libmpi.so.40`, {})).toEqual([['40', true, undefined]]);
    // No SONAME and no version in its name: nothing to compare, so not compatible.
    expect(bound(`${lib}libmpi.so`, {})).toEqual([
      ['unknown', false, 'no version in its SONAME (none) or its file name to compare'],
    ]);
    // Another major, or another library, bound under the image's library's name.
    expect(bound(`${lib}libmpi.so.40`, { soname: 'libmpi.so.12' })).toEqual([
      ['40', false, 'bound as libmpi.so.40, but its SONAME is libmpi.so.12'],
    ]);
    expect(bound(`${lib}libmpi.so.40`, { soname: 'libfoo.so.40' })).toEqual([
      ['40', false, 'bound as libmpi.so.40, but its SONAME is libfoo.so.40'],
    ]);
    // A GTL named with a version its SONAME lacks is one library, not a mismatch.
    expect(bound(`${lib}libmpi.so.40.30.9`, { soname: 'libmpi.so' })).toEqual([['40.30.9', true, undefined]]);
  });

  it('a snapshot whose files are not normalised paths under their bind is refused by its schema', () => {
    const withFile = (p: string) =>
      hostSnapshotSchema.safeParse(
        snapshot([
          {
            spec: '/h:/opt/cray',
            source: '/h',
            target: '/opt/cray',
            kind: 'directory',
            files: [{ path: p, link: 'x' }],
          },
        ]),
      );
    expect(withFile('/opt/cray/lib/libmpi.so.12').success).toBe(true);
    for (const bad of ['/opt/cray/../../etc/x', '/opt/cray/./x', '/etc/passwd', '/opt/crayfish/x'])
      expect([bad, withFile(bad).success]).toEqual([bad, false]);
  });

  it("compares MPI versions as Sarus's hook does", () => {
    expect(soVersion('/x/libmpi_cray.so.12.0.0')).toEqual({ base: 'libmpi_cray', version: [12, 0, 0] });
    expect(compareAt('major', [40, 30], [12, 0])).toMatch(/major 40 on the host, 12/);
    expect(compareAt('full', [40, 30, 0], [40, 30, 4])).toMatch(/older/);
    expect(compareAt('full', [40, 40, 7], [40, 30, 4])).toBeUndefined();
    expect(compareAt('strict', [40, 40, 7], [40, 30, 4])).toMatch(/is not/);
    expect(compareAt('strict', [12, 0], [12])).toBeUndefined();
  });
});
