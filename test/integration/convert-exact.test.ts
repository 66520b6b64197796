/**
 * Issue 17.4: the SIF holds exactly the metadata the image holds: mode 000
 * files and directories, setuid/setgid/sticky, odd and big owners, times,
 * a fifo and an owned symlink. From the daemon and from a saved archive,
 * compared with `docker export` of the same image, entry by entry.
 * Issue 17.5: two conversions of one image are byte-identical, and
 * `sifkit verify-conversion` proves a SIF is the conversion of its image.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { inspectSif } from '../../src/sif/inspect';
import { compareFiles } from '../../src/convert/reproducible';
import { runCli } from '../support/cli';
import { BUSYBOX, docker, removeTestImages, runId } from '../support/engine';
import { buildFixtureImage, exportImage, extractPartition, listDir, type Listing } from '../support/trees';

jest.setTimeout(240_000);

const T = '2001-02-03 04:05:06';
/** chown before chmod: chown clears setuid and setgid. */
const HOSTILE = `FROM ${BUSYBOX}
RUN mkdir -p /x/d000/inner /x/sticky /x/dsgid /x/owned-dir \\
 && echo secret > /x/d000/inner/f && echo a > /x/f000 && echo b > /x/suid && echo c > /x/sgid \\
 && echo d > /x/owned && echo e > /x/f7777 && echo f > /x/bigowner && mkfifo /x/fifo && mkfifo /x/fifo000 \\
 && ln -s f000 /x/link && chown -h 4321:8765 /x/link \\
 && chown 1234:5678 /x/owned && chown 3000000:3000001 /x/bigowner && chown 65534:65534 /x/d000 /x/owned-dir \\
 && chmod 000 /x/f000 /x/d000/inner/f /x/d000/inner /x/fifo000 && chmod 4711 /x/suid && chmod 2701 /x/sgid \\
 && chmod 1777 /x/sticky && chmod 7777 /x/f7777 && chmod 3770 /x/dsgid && chmod 0 /x/owned-dir \\
 && touch -d '${T}' /x/f000 /x/suid /x/owned /x/bigowner /x/d000/inner/f \\
 && touch -d '${T}' /x/d000/inner /x/sticky && chmod 000 /x/d000
`;

/** What the engine adds to every container (not part of the image). */
const ENGINE_ONLY = /^(\.dockerenv|etc\/hostname|etc\/hosts|etc\/resolv\.conf|dev(\/.*)?|proc|sys|etc\/mtab)$/;

function only(l: Listing, re: RegExp): Listing {
  return new Map([...l].filter(([p]) => re.test(p) && !ENGINE_ONLY.test(p)));
}

describe('convert keeps every metadata bit of a hostile image (daemon and archive vs docker export)', () => {
  const tag = `sifkittest/hostile:${runId}`;
  let dir: string;
  let engine: Listing;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-exact-'));
    await buildFixtureImage(docker, tag, HOSTILE);
    engine = only((await exportImage(docker, tag, { times: true })).files, /^x(\/|$)/);
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('has the hostile entries in the fixture as the engine shows them', () => {
    expect(engine.get('x/f000')).toMatchObject({ mode: '0', type: 'file' });
    expect(engine.get('x/d000')).toMatchObject({ mode: '0', type: 'directory', uid: 65534 });
    expect(engine.get('x/bigowner')).toMatchObject({ uid: 3000000, gid: 3000001 });
    expect(engine.get('x/suid')?.mode).toBe('4711');
    expect(engine.get('x/fifo000')).toMatchObject({ type: 'fifo', mode: '0' });
  });

  async function convertAndList(source: string, name: string): Promise<Listing> {
    const out = path.join(dir, `${name}.sif`);
    const r = await runCli(['convert', source, '-o', out]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const root = path.join(dir, `${name}-root`);
    extractPartition(out, (await inspectSif(out)).partition!.offset, root);
    return only((await listDir(root, { times: true })).files, /^x(\/|$)/);
  }

  it('from the daemon: modes (000, setuid, setgid, sticky), owners, times, special files match entry for entry', async () => {
    const ours = await convertAndList(`docker-daemon:${tag}`, 'daemon');
    expect([...ours.keys()].sort()).toEqual([...engine.keys()].sort());
    for (const [p, facts] of engine) expect({ p, ...ours.get(p) }).toEqual({ p, ...facts });
  });

  it('from a saved archive: the same', async () => {
    const archive = path.join(dir, 'hostile.tar');
    await pipeline(await docker.getImage(tag).get(), createWriteStream(archive));
    const ours = await convertAndList(`docker-archive:${archive}`, 'archive');
    expect([...ours.keys()].sort()).toEqual([...engine.keys()].sort());
    for (const [p, facts] of engine) expect({ p, ...ours.get(p) }).toEqual({ p, ...facts });
  });

  it('lists mode 000 with unsquashfs too (no extraction in between)', async () => {
    const out = path.join(dir, 'daemon.sif');
    const listing = execFileSync('unsquashfs', [
      '-lln',
      '-o',
      String((await inspectSif(out)).partition!.offset),
      out,
    ]).toString();
    expect(listing).toMatch(/^---------- 0\/0\s+\d+ \S+ \S+ squashfs-root\/x\/f000$/m);
    expect(listing).toMatch(/^d--------- 65534\/65534\s+\d+ \S+ \S+ squashfs-root\/x\/d000$/m);
  });

  it('converts one image twice to byte-identical SIFs, from the daemon and from an archive, with no clock in them', async () => {
    const archive = path.join(dir, 'hostile.tar');
    for (const [source, name] of [
      [`docker-daemon:${tag}`, 'twice-d'],
      [`docker-archive:${archive}`, 'twice-a'],
    ]) {
      const a = path.join(dir, `${name}1.sif`);
      const b = path.join(dir, `${name}2.sif`);
      expect((await runCli(['convert', source, '-o', a])).code).toBe(0);
      expect((await runCli(['convert', source, '-o', b])).code).toBe(0);
      expect(await compareFiles(a, b)).toMatchObject({ identical: true, differing: 0 });
    }
    const info = await docker.getImage(tag).inspect();
    const s = await inspectSif(path.join(dir, 'twice-d1.sif'));
    // Header time is the image's creation; the UUID is a version-8 UUID derived from the image ID.
    expect(s.created).toBe(Math.floor(Date.parse(info.Created) / 1000));
    expect(s.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Another option, another UUID: zstd is another conversion.
    const z = path.join(dir, 'zstd.sif');
    expect((await runCli(['convert', `docker-daemon:${tag}`, '-o', z, '--compression', 'zstd'])).code).toBe(0);
    expect((await inspectSif(z)).uuid).not.toBe(s.uuid);
  });

  it('verify-conversion proves a SIF is the conversion of its image, and names the first byte of one that is not', async () => {
    const sif = path.join(dir, 'twice-d1.sif');
    const ok = await runCli(['verify-conversion', sif, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, identical: true, source: `docker-daemon:${tag}` });
    // The zstd SIF converts again with zstd (read from its superblock).
    expect((await runCli(['verify-conversion', path.join(dir, 'zstd.sif')])).code).toBe(0);
    const changed = path.join(dir, 'changed.sif');
    await fs.copyFile(sif, changed);
    const fh = await fs.open(changed, 'r+');
    const at = (await inspectSif(changed)).partition!.offset + 200;
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, at);
    one[0] ^= 0xff;
    await fh.write(one, 0, 1, at);
    await fh.close();
    const bad = await runCli(['verify-conversion', changed, `docker-daemon:${tag}`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(
      `is not the conversion of docker-daemon:${tag}: 1 bytes differ, the first at offset ${at}`,
    );
  });
});

describe('verify --deep --reconvert: the tree proves its SIFs are the conversions of their images', () => {
  const tag = `sifkittest/reconvert:${runId}`;
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-reconvert-'));
    await buildFixtureImage(
      docker,
      tag,
      `FROM ${BUSYBOX}\nLABEL io.sifkit.stem="lumi-reconvert-test"\nRUN echo x > /x\n`,
    );
    await fs.mkdir(path.join(dir, 'root'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
    await removeTestImages();
  });

  it('says identical for a staged conversion, and names the one whose bytes were changed (exit 1)', async () => {
    const root = path.join(dir, 'root');
    const conv = await runCli(['convert', `docker-daemon:${tag}`, '--out-dir', dir, '--json']);
    expect(conv.code).toBe(0);
    const sif = JSON.parse(conv.stdout).sif.out as string;
    expect((await runCli(['stage', sif, '--untested', '--root', root])).code).toBe(0);
    const before = await listDir(root);
    const good = await runCli(['verify', '--deep', '--reconvert', '--root', root, '--json']);
    expect({ code: good.code, stderr: good.stderr }).toMatchObject({ code: 0 });
    expect(JSON.parse(good.stdout).reconverted).toEqual([
      { path: `tested-containers/${path.basename(sif)}`, source: `docker-daemon:${tag}`, result: 'identical' },
    ]);
    // Checking wrote nothing into the tree.
    expect(await listDir(root)).toEqual(before);

    const staged = path.join(root, 'tested-containers', path.basename(sif));
    const fh = await fs.open(staged, 'r+');
    const at = (await inspectSif(staged)).partition!.offset + 100;
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, at);
    one[0] ^= 0xff;
    await fh.write(one, 0, 1, at);
    await fh.close();
    const bad = await runCli(['verify', '--deep', '--reconvert', '--root', root, '--json']);
    expect(bad.code).toBe(1);
    const doc = JSON.parse(bad.stdout);
    expect(doc.reconverted[0]).toMatchObject({ result: 'differs' });
    expect(doc.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'not-its-conversion',
          message: expect.stringContaining(
            `1 bytes differ from a fresh conversion of docker-daemon:${tag}, the first at offset ${at}`,
          ),
        }),
      ]),
    );
  });

  it('refuses --reconvert without --deep (exit 2, one line)', async () => {
    const r = await runCli(['verify', '--reconvert', '--root', path.join(dir, 'root')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
