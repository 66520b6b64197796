/**
 * The engine converter against the in-memory engine: the fake's export of
 * a tiny file system goes through the real mksquashfs (a local tool, no
 * daemon) into a SIF, read back with sifkit's own SIF reader.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convert } from '../../src/convert/convert';
import { CONVERT_LABEL, convertFromEngine } from '../../src/convert/from-engine';
import { InputError } from '../../src/errors';
import { Arch, FsType } from '../../src/sif/format';
import { inspectSif } from '../../src/sif/inspect';
import { layerTar } from '../support/archives';
import { tarHeader } from '../../src/convert/squash';
import { dataPadding, headerBlocks } from '../../src/convert/squash-tar';
import type { Entry, EntryType } from '../../src/convert/flatten';
import { FakeEngine, fakeImage, type FakeImage } from '../support/fake-engine';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-unit-convert-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const FILES = [
  { name: 'bin', type: 'directory' as const },
  { name: 'etc', type: 'directory' as const },
  { name: 'etc/motd', content: 'hello from the fake\n' },
  { name: 'bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o755 },
];

async function engineWithImage(): Promise<{ engine: FakeEngine; img: FakeImage }> {
  const engine = new FakeEngine();
  const img = await fakeImage({
    files: FILES,
    tags: ['unit/tiny:1.0'],
    labels: { 'org.example.kind': 'tiny' },
    config: { Env: ['PATH=/bin', 'GREETING=hi'], WorkingDir: '/etc' },
  });
  // What the engine's export adds that is its own, not the image's.
  img.rootfs = await layerTar([{ name: '.dockerenv', content: '' }, ...FILES, { name: 'etc/hostname', content: '' }]);
  engine.addImage(img);
  return { engine, img };
}

/** The paths in the SIF's squashfs partition, as unsquashfs lists them. */
function partitionFiles(sif: string, offset: number): string[] {
  const out = execFileSync('unsquashfs', ['-o', String(offset), '-lc', '-d', '', sif]).toString();
  return out
    .split('\n')
    .map((l) => l.trim().replace(/^\//, ''))
    .filter(Boolean)
    .sort();
}

describe('convert from the in-memory engine', () => {
  it("makes a SIF of the export with the image's labels and one squashfs partition, and removes the export container", async () => {
    const { engine, img } = await engineWithImage();
    const out = path.join(dir, 'tiny.sif');

    const r = await convert('docker-daemon:unit/tiny:1.0', out, { engine });

    expect(r).toMatchObject({ out, backend: 'native', imageId: img.id, arch: 'amd64', compression: 'gzip' });
    const sif = await inspectSif(out);
    expect(sif.labels).toMatchObject({ 'org.example.kind': 'tiny' });
    expect(sif.environment['/.singularity.d/env/10-docker2singularity.sh']).toContain(
      'export GREETING="${GREETING:-"hi"}"',
    );
    expect(sif.deffile).toMatch(/^bootstrap: docker-daemon$/m);
    expect(sif.deffile).toMatch(/^from: unit\/tiny:1\.0$/m);
    expect(sif.arch).toBe(Arch.amd64);
    expect(sif.partition).toMatchObject({
      squashfsMagic: true,
      compression: 'gzip',
      arch: Arch.amd64,
      fsType: FsType.squash,
    });
    expect(sif.objects.filter((o) => o.type === 'partition')).toHaveLength(1);
    const files = partitionFiles(out, sif.partition!.offset);
    expect(files).toEqual(expect.arrayContaining(['bin/tool', 'etc/motd', '.singularity.d/labels.json']));
    expect(files).not.toContain('.dockerenv');
    expect(files).not.toContain('etc/hostname');

    const create = engine.calls.find((c) => c.op === 'createContainer')!;
    expect(create.args[0]).toEqual({
      image: img.id,
      entrypoint: ['/sifkit-export-only'],
      cmd: [],
      labels: { [CONVERT_LABEL]: `${os.hostname()}:${process.pid}` },
      network: 'disabled',
    });
    expect(engine.ops()).not.toContain('start');
    expect(engine.containers.size).toBe(0);
  });

  it('removes the export container when the export fails, and leaves no SIF', async () => {
    const { engine, img } = await engineWithImage();
    img.rootfs = Buffer.alloc(4096, 7); // not a tar
    const out = path.join(dir, 'broken.sif');

    await expect(convertFromEngine(engine, 'unit/tiny:1.0', out, {})).rejects.toThrow();

    expect(engine.ops()).toContain('export');
    expect(engine.ops().at(-1)).toBe('removeContainer');
    expect(engine.containers.size).toBe(0);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('takes a member of an unknown type flag as a file, as tar (and the leak scan) do', async () => {
    const { engine, img } = await engineWithImage();
    const tar = await layerTar([...FILES, { name: 'bin/odd', content: 'zz\n' }]);
    // Retype bin/odd's header ('Z', known to no tar) and mend its checksum.
    const at = tar.indexOf('bin/odd');
    tar.write('Z', at + 156, 'latin1');
    tar.fill(' ', at + 148, at + 156);
    let sum = 0;
    for (const b of tar.subarray(at, at + 512)) sum += b;
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
    img.rootfs = tar;
    const out = path.join(dir, 'odd.sif');
    await convertFromEngine(engine, 'unit/tiny:1.0', out, {});
    const sif = await inspectSif(out);
    const odd = execFileSync('unsquashfs', ['-o', String(sif.partition!.offset), '-cat', out, 'bin/odd']).toString();
    expect(odd).toBe('zz\n');
  });

  it('refuses a path or a symlink target holding a NUL byte (a pax record can carry one; mksquashfs would cut the name there)', async () => {
    const entry = (type: EntryType, linkname?: string): Entry => ({
      type,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
      size: type === 'file' ? 4 : 0,
      linkname,
    });
    const cases: Array<[Buffer, RegExp]> = [
      [
        Buffer.concat([headerBlocks(tarHeader('etc/passwd\0x', entry('file'))), Buffer.from('evil'), dataPadding(4)]),
        /^export of unit\/tiny:1\.0: path "etc\/passwd\\u0000x" holds a NUL byte, which no file name can$/,
      ],
      [
        // A pax linkpath record (sifkit's own writer never puts a target there): the engine's tar could.
        headerBlocks(tarHeader('etc/l', { ...entry('symlink', 'x'), xattrs: { linkpath: '/etc/shadow\0x' } })),
        /^member "etc\/l": symlink target "\/etc\/shadow\\u0000x" holds a NUL byte, which no file name can$/,
      ],
    ];
    for (const [member, message] of cases) {
      const { engine, img } = await engineWithImage();
      img.rootfs = Buffer.concat([member, Buffer.alloc(1024)]);
      const out = path.join(dir, 'nul.sif');
      const err = await convertFromEngine(engine, 'unit/tiny:1.0', out, {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(message);
      expect(await fs.readdir(dir)).toEqual([]);
    }
  });

  it('refuses an export cut short (no end-of-archive block) and leaves no SIF', async () => {
    const { engine, img } = await engineWithImage();
    img.rootfs = img.rootfs.subarray(0, img.rootfs.length - 1024 - 512);
    const out = path.join(dir, 'cut.sif');
    await expect(convertFromEngine(engine, 'unit/tiny:1.0', out, {})).rejects.toThrow(
      /^the export of unit\/tiny:1.0 stopped short: it ends at byte \d+, before the end-of-archive block$/,
    );
    expect(engine.containers.size).toBe(0);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('removes export containers left by a killed convert on this host, and only those', async () => {
    const { engine, img } = await engineWithImage();
    const dead = 'f'.repeat(64);
    const alive = 'e'.repeat(64);
    // A pid above the kernel's largest is never alive.
    engine.containers.set(dead, {
      id: dead,
      spec: { image: img.id, network: 'disabled' },
      labels: { [CONVERT_LABEL]: `${os.hostname()}:${2 ** 23}` },
      state: 'created',
    });
    engine.containers.set(alive, {
      id: alive,
      spec: { image: img.id, network: 'disabled' },
      labels: { [CONVERT_LABEL]: `${os.hostname()}:${process.pid}` },
      state: 'created',
    });

    await convertFromEngine(engine, 'unit/tiny:1.0', path.join(dir, 'x.sif'), {});

    expect([...engine.containers.keys()]).toEqual([alive]);
  });

  it('says the engine has no such image on a 404, as one InputError', async () => {
    const engine = new FakeEngine();
    const p = convert('docker-daemon:unit/none:1.0', path.join(dir, 'none.sif'), { engine });
    await expect(p).rejects.toThrow(InputError);
    await expect(p).rejects.toMatchObject({ code: 'no-image', message: 'the engine has no image unit/none:1.0' });
    expect(engine.ops()).toEqual(['inspectImage']);
  });
});
