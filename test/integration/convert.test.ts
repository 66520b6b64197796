import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TEMP_MARKER } from '../../src/util/files';
import { inspectSif } from '../../src/sif/inspect';
import { CONVERT_LABEL } from '../../src/convert/from-engine';
import { runCli, CLI } from '../support/cli';
import { BUSYBOX, docker, removeTestImages, runId } from '../support/engine';
import { buildFixtureImage, exportImage, extractPartition, listDir, type FileFacts } from '../support/trees';
import { layerTar, legacyArchive, toOciLayout } from '../support/archives';
import { until } from '../support/poll';

jest.setTimeout(240_000);

const LONG = `/w/long/${'a'.repeat(60)}/${'b'.repeat(70)}/${'c'.repeat(80)}`;

/** Every OCI flattening case the issue names, made by the engine's own overlay2 diffs. */
const FIXTURE = `FROM ${BUSYBOX}
ENV PATH=/bin:/usr/bin HOME_NOTE="a \\"quoted\\" \\$value" 1BAD=skipped
RUN mkdir -p /w/a /w/opq/sub /w/empty /w/h \\
 && echo gone > /w/a/gone && echo keep > /w/a/keep \\
 && echo lower > /w/opq/old && echo deep > /w/opq/sub/deep \\
 && echo t > /w/h/target && ln /w/h/target /w/h/same-layer-link \\
 && echo shared > /w/h/shared && ln /w/h/shared /w/h/shared2 \\
 && echo x > /w/swap
RUN rm /w/a/gone && rm -rf /w/opq && mkdir /w/opq && echo new > /w/opq/new \\
 && ln /w/h/target /w/h/cross-layer-link \\
 && rm /w/swap && mkdir /w/swap && echo in > /w/swap/inner \\
 && echo replaced > /w/h/shared
RUN rm -rf /w/swap && echo back > /w/swap \\
 && mkdir -p ${LONG} && echo long > ${LONG}/${'f'.repeat(120)} \\
 && cp /bin/busybox /w/suid && chmod 4755 /w/suid && mkdir /w/sgid && chmod 2775 /w/sgid && chmod 1777 /w/empty \\
 && chown 1234:5678 /w/a/keep && ln -s ../a/keep /w/h/sym && mkdir /w/empty2
CMD ["/bin/sh", "-c", "echo hi"]
`;

/** What `docker export` shows that is the engine's, not the image's. */
const ENGINE_ONLY = /^(\.dockerenv|etc\/hostname|etc\/hosts|etc\/resolv\.conf|dev(\/.*)?|proc|sys|etc\/mtab)$/;
/** What apptainer adds (reference §2). */
const ADDED =
  /^(\.singularity\.d(\/.*)?|singularity|\.exec|\.run|\.shell|\.test|environment|dev|proc|sys|root|tmp|var|var\/tmp|home|etc|etc\/hosts|etc\/resolv\.conf)$/;

describe('convert: native Docker → SIF against the engine, siftool and unsquashfs', () => {
  const tag = `sifkittest/convert:${runId}`;
  let dir: string;
  let imageId: string;
  let sif: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-convert-'));
    imageId = await buildFixtureImage(docker, tag, FIXTURE);
    sif = path.join(dir, 'fixture.sif');
    const r = await runCli(['convert', `docker-daemon:${tag}`, '-o', sif, '--deterministic', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
  afterAll(async () => {
    await removeTestImages();
    if (!process.env.SIFKIT_KEEP_TEST_FILES) await fs.rm(dir, { recursive: true, force: true });
  });

  it('holds exactly the files the engine shows, plus apptainer additions', async () => {
    const engine = await exportImage(docker, tag);
    const s = await inspectSif(sif);
    const root = path.join(dir, 'root');
    extractPartition(sif, s.partition!.offset, root);
    const ours = await listDir(root);
    const mine = new Map([...ours.files].filter(([p]) => !ADDED.test(p)));
    const theirs = new Map([...engine.files].filter(([p]) => !ENGINE_ONLY.test(p) && !ADDED.test(p)));
    expect([...mine.keys()].sort()).toEqual([...theirs.keys()].sort());
    for (const [p, facts] of theirs) expect({ p, ...(mine.get(p) as FileFacts) }).toEqual({ p, ...facts });
    // Hard link groups: the cross-layer link shares the copied-up target; the older link keeps the old inode.
    const groups = (g: string[][]) => g.filter((x) => x.every((p) => p.startsWith('w/')));
    expect(groups(ours.groups)).toEqual(groups(engine.groups));
    expect(mine.get('w/h/shared2')?.sha256).not.toEqual(mine.get('w/h/shared')?.sha256);
    expect(mine.has('w/a/gone')).toBe(false);
    expect(mine.has('w/opq/old')).toBe(false);
    expect(mine.has('w/opq/new')).toBe(true);
    expect(mine.get('w/swap')?.type).toBe('file');
    expect(mine.get('w/suid')?.mode).toBe('4755');
    expect(mine.get('w/a/keep')).toMatchObject({ uid: 1234, gid: 5678 });
    // The additions, as reference §2 lists them.
    for (const a of [
      '.singularity.d/actions/run',
      '.singularity.d/env/10-docker2singularity.sh',
      '.singularity.d/runscript',
      '.singularity.d/labels.json',
      'etc/hosts',
      'tmp',
      'var/tmp',
    ])
      expect(ours.files.has(a)).toBe(true);
    expect(ours.files.get('singularity')).toMatchObject({ type: 'symlink', link: '.singularity.d/runscript' });
    expect(ours.files.get('environment')).toMatchObject({
      type: 'symlink',
      link: '.singularity.d/env/90-environment.sh',
    });
    const env = await fs.readFile(path.join(root, '.singularity.d/env/10-docker2singularity.sh'), 'utf8');
    expect(env).toContain('export PATH="/bin:/usr/bin"\n');
    expect(env).toContain('export HOME_NOTE="${HOME_NOTE:-"a \\"quoted\\" \\$value"}"');
    expect(env).not.toContain('1BAD');
    const labels = JSON.parse(await fs.readFile(path.join(root, '.singularity.d/labels.json'), 'utf8'));
    expect(labels['io.sifkit.test']).toBe(runId);
    expect(labels['io.sifkit.image-id']).toBe(imageId);
  });

  it('runs the runscript and env scripts as a shell would', async () => {
    const root = path.join(dir, 'root');
    const run = (args: string[]) =>
      execFileSync('sh', [path.join(root, '.singularity.d/runscript'), ...args]).toString();
    // CMD only: no arguments run CMD; arguments replace it.
    expect(run([])).toBe('hi\n');
    expect(run(['echo', 'a b', '"q"', '$x'])).toBe('a b "q" $x\n');
    const env = execFileSync(
      'sh',
      ['-c', `. ${path.join(root, '.singularity.d/env/10-docker2singularity.sh')}; printf %s "$HOME_NOTE"`],
      { env: { PATH: process.env.PATH } },
    ).toString();
    expect(env).toBe('a "quoted" $value');
    const hostWins = execFileSync(
      'sh',
      ['-c', `. ${path.join(root, '.singularity.d/env/10-docker2singularity.sh')}; printf %s "$HOME_NOTE"`],
      { env: { PATH: process.env.PATH, HOME_NOTE: 'host' } },
    ).toString();
    expect(hostWins).toBe('host');
  });

  it('is read by siftool as sifkit inspect reads it', async () => {
    const header = execFileSync('siftool', ['header', sif]).toString();
    expect(header).toMatch(/Primary Architecture:\s+amd64/);
    const list = execFileSync('siftool', ['list', sif]).toString();
    const s = await inspectSif(sif);
    const rows = list.split('\n').filter((l) => /^\d+\s+\|/.test(l));
    expect(rows).toHaveLength(s.objects.length);
    for (const o of s.objects) expect(list).toContain(`${o.offset}-${o.offset + o.size}`);
    expect(list).toMatch(/FS \(Squashfs\/\*System\/amd64\)/);
    const r = await runCli(['inspect', sif]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`io.sifkit.image-id=${imageId}`);
    expect(r.stdout).toContain('export PATH="/bin:/usr/bin"');
    expect(s.partition?.squashfsMagic).toBe(true);
  });

  it('is byte-identical to the same objects assembled by siftool new + add (launch script, UUID and times masked)', async () => {
    const s = await inspectSif(sif);
    const ref = path.join(dir, 'siftool.sif');
    execFileSync('siftool', ['new', ref]);
    for (const o of s.objects) {
      const obj = path.join(dir, `obj${o.id}`);
      execFileSync('sh', ['-c', `siftool dump ${o.id} ${sif} > ${obj}`]);
      const args =
        o.type === 'partition'
          ? ['--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2']
          : ['--datatype', String({ deffile: 1, genericJson: 6 }[o.type as 'deffile'])];
      execFileSync('siftool', ['add', ref, obj, ...args, '--groupid', '1', ...(o.name ? ['--filename', o.name] : [])]);
    }
    const a = await fs.readFile(sif);
    const b = await fs.readFile(ref);
    expect(b.length).toBe(a.length);
    const mask = (buf: Buffer) => {
      const m = Buffer.from(buf);
      m.fill(0, 0, 0x20); // launch script: siftool new leaves it empty
      m.fill(0, 0x30, 0x50); // UUID, created, modified
      for (let i = 0; i < 48; i++) {
        const d = 4096 + i * 585;
        m.fill(0, d + 41, d + 57); // created, modified
      }
      return m;
    };
    expect(mask(a).equals(mask(b))).toBe(true);
  });

  it('gives the same partition from an OCI-layout archive with gzip layers, manifest first', async () => {
    // Same base name for both: the definition file (in the partition too) names it.
    await fs.mkdir(path.join(dir, 'legacy'));
    await fs.mkdir(path.join(dir, 'oci'));
    const legacy = path.join(dir, 'legacy', 'image.tar');
    await pipeline(await docker.getImage(tag).get(), createWriteStream(legacy));
    const oci = path.join(dir, 'oci', 'image.tar');
    await toOciLayout(legacy, oci);
    const fromLegacy = path.join(dir, 'legacy.sif');
    const out = path.join(dir, 'oci.sif');
    expect((await runCli(['convert', `docker-archive:${legacy}`, '-o', fromLegacy, '--deterministic'])).code).toBe(0);
    const r = await runCli(['convert', `docker-archive:${oci}`, '-o', out, '--deterministic']);
    expect(r.code).toBe(0);
    // mksquashfs 4.5.1 stamps the root directory with the current time in
    // -tar mode (-root-time is ignored), so compare what the partitions hold.
    const contents = async (f: string) => {
      const s = await inspectSif(f);
      const dest = path.join(dir, `x-${path.basename(f)}`);
      extractPartition(f, s.partition!.offset, dest);
      const l = await listDir(dest);
      return {
        files: [...l.files].sort(),
        groups: l.groups,
        head: (await fs.readFile(f)).subarray(0, s.partition!.offset).toString('hex'),
      };
    };
    expect(await contents(out)).toEqual(await contents(fromLegacy));
  });

  it('holds the same files whether it streams from the engine or flattens a saved archive itself', async () => {
    // Two flatteners, the engine's and ours, checked against each other.
    const saved = path.join(dir, 'saved.tar');
    await pipeline(await docker.getImage(tag).get(), createWriteStream(saved));
    const fromArchive = path.join(dir, 'from-archive.sif');
    expect((await runCli(['convert', `docker-archive:${saved}`, '-o', fromArchive, '--deterministic'])).code).toBe(0);
    const listing = async (f: string) => {
      const s = await inspectSif(f);
      return execFileSync('unsquashfs', ['-lln', '-o', String(s.partition!.offset), f], { maxBuffer: 64 << 20 })
        .toString()
        .split('\n')
        .filter((l) => l.includes('squashfs-root/') && !l.endsWith('squashfs-root/.singularity.d/Singularity')) // names its bootstrap
        .map((l) => l.replace(/\d{4}-\d\d-\d\d \d\d:\d\d/, ''))
        .sort();
    };
    const daemon = await listing(sif);
    expect(daemon.length).toBeGreaterThan(50);
    expect(daemon).toEqual(await listing(fromArchive));
    const labels = async (f: string) => (await inspectSif(f)).labels;
    expect(await labels(sif)).toEqual(await labels(fromArchive));
  });

  it('squashes with zstd, lz4 or xz on request, holding the same files, and bounds mksquashfs memory', async () => {
    const listing = (f: string, offset: number) =>
      execFileSync('unsquashfs', ['-lln', '-o', String(offset), f], { maxBuffer: 64 << 20 })
        .toString()
        .split('\n')
        .filter((l) => l.includes('squashfs-root'))
        .map((l) => l.replace(/\d{4}-\d\d-\d\d \d\d:\d\d/, ''))
        .sort();
    const base = await inspectSif(sif);
    const want = listing(sif, base.partition!.offset);
    expect(base.partition!.compression).toBe('gzip');
    for (const compression of ['zstd', 'lz4', 'xz']) {
      const out = path.join(dir, `${compression}.sif`);
      const r = await runCli([
        'convert',
        `docker-daemon:${tag}`,
        '-o',
        out,
        '--compression',
        compression,
        '--mksquashfs-mem',
        '64M',
        '--json',
      ]);
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.sif).toMatchObject({ compression });
      expect(doc.sif.mksquashfsPeakMiB).toBeGreaterThan(0);
      const s = await inspectSif(out);
      expect(s.partition!.compression).toBe(compression);
      expect(execFileSync('unsquashfs', ['-s', '-o', String(s.partition!.offset), out]).toString()).toMatch(
        new RegExp(`Compression ${compression}`),
      );
      expect(listing(out, s.partition!.offset)).toEqual(want);
      expect(execFileSync('siftool', ['list', out]).toString()).toMatch(/Squashfs/);
    }
  });

  it('refuses an unknown compression or a bad mksquashfs memory size in one line', async () => {
    const out = path.join(dir, 'never.sif');
    const bad = await runCli(['convert', `docker-daemon:${tag}`, '-o', out, '--compression', 'brotli']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('sifkit: error: compression "brotli" is not one of gzip, zstd, lz4, xz\n');
    const mem = await runCli(['convert', `docker-daemon:${tag}`, '-o', out, '--mksquashfs-mem', '8M']);
    expect(mem.code).toBe(2);
    expect(mem.stderr).toBe(
      'sifkit: error: mksquashfs memory "8M" is not a size from 16M to 16384G such as 512M or 2G\n',
    );
    await expect(fs.access(out)).rejects.toThrow();
  });

  it('names the SIF by the LUMI convention from the image labels, and refuses without them', async () => {
    const r = await runCli(['convert', `docker-daemon:${tag}`, '--out-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no io.sifkit.stem label/);
  });
});

async function exportContainers(): Promise<string[]> {
  return (await docker.listContainers({ all: true, filters: { label: [CONVERT_LABEL] } })).map((c) => c.Id);
}

describe('convert: bad input leaves nothing behind', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-convert-bad-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  // Each case its own archive name, counted (no random draw).
  let archives = 0;
  async function expectRefused(layers: Buffer[], message: RegExp, code = 2): Promise<void> {
    const archive = path.join(dir, `in-${++archives}.tar`);
    await legacyArchive(archive, layers);
    const out = path.join(dir, 'out.sif');
    const r = await runCli(['convert', `docker-archive:${archive}`, '-o', out]);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')[0]).toMatch(/^sifkit: error: /);
    expect(r.code).toBe(code);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.sif') || f.includes(TEMP_MARKER))).toEqual([]);
  }

  it('keeps numeric owners even where the names in the tar mean other ids on this host', async () => {
    // Layer tars carry names too; mksquashfs would look them up here.
    const host = execFileSync('getent', ['group', '0']).toString().split(':')[0];
    const archive = path.join(dir, 'owners.tar');
    await legacyArchive(archive, [
      await layerTar([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/owned', content: 'x', uid: 4242, gid: 4343, uname: 'root', gname: host },
      ]),
    ]);
    const out = path.join(dir, 'owners.sif');
    expect((await runCli(['convert', `docker-archive:${archive}`, '-o', out])).code).toBe(0);
    const s = await inspectSif(out);
    const listing = execFileSync('unsquashfs', ['-lln', '-o', String(s.partition!.offset), out]).toString();
    expect(listing).toMatch(/ 4242\/4343 .* squashfs-root\/etc\/owned\n/);
    await fs.rm(archive);
    await fs.rm(out);
  });

  it('refuses ../ and absolute paths in a layer (tar-slip)', async () => {
    await expectRefused(
      [
        await layerTar([
          { name: 'etc/', type: 'directory' },
          { name: '../escape', content: 'x' },
        ]),
      ],
      /climbs out of the root/,
    );
    await expectRefused([await layerTar([{ name: '/etc/passwd', content: 'x' }])], /absolute path/);
  });

  it('refuses a write through a symlink from a lower layer', async () => {
    await expectRefused(
      [
        await layerTar([{ name: 'a', type: 'symlink', linkname: '/etc' }]),
        await layerTar([{ name: 'a/passwd', content: 'owned' }]),
      ],
      /written through the symlink a -> \/etc/,
    );
  });

  it('refuses a truncated archive', async () => {
    const archive = path.join(dir, 'whole.tar');
    await legacyArchive(archive, [await layerTar([{ name: 'big', content: 'x'.repeat(100_000) }])]);
    const cut = path.join(dir, 'cut.tar');
    const bytes = await fs.readFile(archive);
    await fs.writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 3)));
    const r = await runCli(['convert', `docker-archive:${cut}`, '-o', path.join(dir, 'cut.sif')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/truncated|no manifest/);
    await fs.rm(archive);
    await fs.rm(cut);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.sif') || f.includes(TEMP_MARKER))).toEqual([]);
  });

  it('says so when the apptainer backend is asked for on a host without apptainer', async () => {
    const archive = path.join(dir, 'ok.tar');
    await legacyArchive(archive, [await layerTar([{ name: 'bin/', type: 'directory' }])]);
    const r = await runCli(
      ['convert', `docker-archive:${archive}`, '-o', path.join(dir, 'ok.sif'), '--backend', 'apptainer'],
      { env: { PATH: '/usr/bin:/bin' } },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sifkit: error: apptainer is not installed here\nsifkit: hint: use --backend native/);
    await fs.rm(archive);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.sif') || f.includes(TEMP_MARKER))).toEqual([]);
  });

  it('refuses a non-SIF file given to inspect in one line', async () => {
    const f = path.join(dir, 'not.sif');
    await fs.writeFile(f, 'hello, not a SIF\n');
    const r = await runCli(['inspect', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`sifkit: error: ${f}: not a valid SIF: no SIF_MAGIC\n`);
  });

  it('fails cleanly on a full disk, publishing nothing', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root (CI does)');
    const small = path.join(dir, 'small');
    await fs.mkdir(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
    try {
      const archive = path.join(dir, 'big.tar');
      const noise = (await import('node:crypto')).randomBytes(2 << 20).toString('base64');
      await legacyArchive(archive, [await layerTar([{ name: 'noise', content: noise }])]);
      const r = await runCli(['convert', `docker-archive:${archive}`, '-o', path.join(small, 'x.sif')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/sifkit: error: (mksquashfs failed|no space left)/);
      expect(await fs.readdir(small)).toEqual([]);
    } finally {
      execFileSync('umount', [small]);
    }
  });

  it('stops on Ctrl-C with exit 130 and no partial output', async () => {
    const out = path.join(dir, 'int.sif');
    const child = spawn(process.execPath, [CLI, 'convert', 'docker-daemon:debian:bookworm-slim', '-o', out], {
      env: { ...process.env, CI: '1' },
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // Interrupted once the work is under way (its own export container exists, labelled host:pid), not after a guessed time.
    const own = async () =>
      (
        await docker.listContainers({
          all: true,
          filters: { label: [`${CONVERT_LABEL}=${os.hostname()}:${child.pid}`] },
        })
      ).length > 0;
    await until(own, 25);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect({ code, stderr }).toMatchObject({ code: 130 });
    expect((await fs.readdir(dir)).filter((f) => f.startsWith('int') || f.includes(TEMP_MARKER))).toEqual([]);
    expect(await exportContainers()).toEqual([]);
  });

  it('after a kill -9, the next convert removes the export container the killed one left', async () => {
    const out = path.join(dir, 'k9.sif');
    const child = spawn(process.execPath, [CLI, 'convert', 'docker-daemon:debian:bookworm-slim', '-o', out], {
      env: { ...process.env, CI: '1' },
    });
    // Killed once its export container and its temp SIF exist.
    const started = async () =>
      (await exportContainers()).length > 0 && (await fs.readdir(dir)).some((f) => f.startsWith('.k9.sif'));
    // Polled without a cap: jest's timeout bounds it, a guessed cap would fail on a loaded machine.
    await until(started, 25);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const left = await exportContainers();
    expect(left).toHaveLength(1);
    const before = (await fs.readdir(dir)).filter((f) => f.includes('k9'));
    expect(before).toEqual([expect.stringMatching(/^\.k9\.sif\.sifkit-tmp-/)]);
    // Run again: the killed run's container and temp file go, the SIF comes.
    expect((await runCli(['convert', `docker-daemon:${BUSYBOX}`, '-o', out])).code).toBe(0);
    expect(await exportContainers()).toEqual([]);
    expect((await fs.readdir(dir)).filter((f) => f.includes('k9'))).toEqual(['k9.sif']);
    await fs.rm(out);
  });
});
