/**
 * One read of an image (convert/one-read.ts) against the real engine and
 * the real mksquashfs: one `docker save` gives the archive, the leak scan
 * and a SIF byte-identical to converting that archive afterwards; a
 * refused scan, an interruption and a failing reader leave nothing under
 * the archive's or the SIF's name, nor any temporary file.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convertSource } from '../../src/convert/convert';
import { saveScanConvert } from '../../src/convert/one-read';
import type { ImageEngine } from '../../src/engine/engine';
import { OperationError } from '../../src/errors';
import { sha256Stream } from '../../src/util/files';
import { runCli } from '../support/cli';
import { BUSYBOX, docker, engine, removeTestImages, runId } from '../support/engine';
import { fixtureRecipe } from '../support/fixtures';
import { buildFixtureImage } from '../support/trees';
import { layerTar, legacyArchive } from '../support/archives';

jest.setTimeout(240_000);

// Verdicts of this run apart from the user's (the CLI children inherit it).
process.env.SIFKIT_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'sifkit-state-'));

/** Layers with whiteouts, an opaque directory and hard links: what pass 1 must flatten as the archive converter does. */
const FIXTURE = `FROM ${BUSYBOX}
RUN mkdir -p /w/a /w/opq && echo gone > /w/a/gone && echo keep > /w/a/keep && echo old > /w/opq/old \\
 && echo t > /w/t && ln /w/t /w/t2 && mkdir -p /opt/cray && echo licensed > /opt/cray/lib
RUN rm /w/a/gone /opt/cray/lib && rm -rf /w/opq && mkdir /w/opq && echo new > /w/opq/new && ln /w/t /w/t3
CMD ["/bin/sh"]
`;

/** The engine, counting its `docker save` calls. */
function counting(e: ImageEngine): { engine: ImageEngine; saves: () => number } {
  let n = 0;
  const wrapped = Object.create(e) as ImageEngine;
  wrapped.saveImage = (ref: string) => {
    n++;
    return e.saveImage(ref);
  };
  return { engine: wrapped, saves: () => n };
}

const sha = (file: string) => sha256Stream(createReadStream(file));

describe('one read of an image: scan, archive and SIF from one docker save', () => {
  const tag = `sifkittest/one-read:${runId}`;
  let dir: string;
  let imageId: string;
  const noNeedles = { digests: new Map<string, string>() };
  const source = { bootstrap: 'docker-archive' as const, from: 'image.tar' };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-one-read-'));
    imageId = await buildFixtureImage(docker, tag, FIXTURE);
  });
  afterAll(async () => {
    await removeTestImages();
    if (!process.env.SIFKIT_KEEP_TEST_FILES) await fs.rm(dir, { recursive: true, force: true });
  });

  /** What is in the directory: published names and temporary ones alike. */
  const listing = async (d: string) => (await fs.readdir(d)).sort();

  it('reads the image once and gives the same SIF as converting the archive afterwards', async () => {
    const out = path.join(dir, 'same');
    await fs.mkdir(out);
    const c = counting(engine);
    const r = await saveScanConvert(c.engine, imageId, {
      signal: new AbortController().signal,
      archive: path.join(out, 'image.tar'),
      sif: path.join(out, 'one-read.sif'),
      needles: noNeedles,
      source,
    });
    expect(c.saves()).toBe(1);
    expect(await listing(out)).toEqual(['image.tar', 'one-read.sif']);
    expect(r.archiveSize).toBe((await fs.stat(path.join(out, 'image.tar'))).size);
    // The scan saw the licensed path in the first layer, though a later layer deletes it.
    expect(r.scan?.leaks.map((l) => l.path)).toContain('/opt/cray/lib');
    expect(r.scan?.layers).toBeGreaterThanOrEqual(3);
    const after = await convertSource(
      { kind: 'docker-archive', path: path.join(out, 'image.tar') },
      path.join(dir, 'after.sif'),
    );
    expect(r.convert?.files).toBe(after.files);
    expect(await sha(path.join(out, 'one-read.sif'))).toBe(await sha(after.out));
    await fs.rm(after.out);
  });

  it('publishes nothing when the scan is refused', async () => {
    const out = path.join(dir, 'refused');
    await fs.mkdir(out);
    const p = saveScanConvert(engine, imageId, {
      signal: new AbortController().signal,
      archive: path.join(out, 'image.tar'),
      sif: path.join(out, 'image.sif'),
      needles: noNeedles,
      source,
      judge: async (scan) => {
        if (scan.leaks.length) throw new OperationError('leak', 'refused by the test');
      },
    });
    await expect(p).rejects.toThrow('refused by the test');
    expect(await listing(out)).toEqual([]);
  });

  it('an interruption mid-stream leaves nothing, and a rerun completes', async () => {
    const out = path.join(dir, 'interrupted');
    await fs.mkdir(out);
    const ac = new AbortController();
    const archive = path.join(out, 'image.tar');
    const p = saveScanConvert(engine, imageId, {
      signal: ac.signal,
      archive,
      sif: path.join(out, 'image.sif'),
      needles: noNeedles,
      source,
      // Aborted once the archive has started: the read is under way.
      onProgress: (line) => {
        if (line.startsWith('docker save')) setImmediate(() => ac.abort());
      },
    });
    await expect(p).rejects.toThrow();
    expect(await listing(out)).toEqual([]);
    await saveScanConvert(engine, imageId, {
      signal: new AbortController().signal,
      archive,
      sif: path.join(out, 'image.sif'),
      source,
    });
    expect(await listing(out)).toEqual(['image.sif', 'image.tar']);
  });

  it('a conversion that fails leaves neither SIF nor archive', async () => {
    const out = path.join(dir, 'reader-fails');
    await fs.mkdir(out);
    const p = saveScanConvert(engine, imageId, {
      signal: new AbortController().signal,
      archive: path.join(out, 'image.tar'),
      sif: path.join(out, 'image.sif'),
      source,
      mksquashfs: path.join(dir, 'no-such-mksquashfs'),
    });
    await expect(p).rejects.toThrow();
    expect(await listing(out)).toEqual([]);
  });

  it('archive and scan alone: the archive is the engine image, byte for byte as docker save gives it', async () => {
    const out = path.join(dir, 'archive-only');
    await fs.mkdir(out);
    const r = await saveScanConvert(engine, imageId, {
      signal: new AbortController().signal,
      archive: path.join(out, 'image.tar'),
      needles: noNeedles,
      source,
    });
    expect(r.convert).toBeUndefined();
    const direct = createHash('sha256');
    for await (const chunk of await engine.saveImage(imageId)) direct.update(chunk as Buffer);
    expect(await sha(path.join(out, 'image.tar'))).toBe(direct.digest('hex'));
  });
});

describe('sifkit release: the leak scan on the one read refuses before anything is written', () => {
  afterAll(() => removeTestImages());

  it('a leaking image: exit 3, the image removed, no archive, no SIF, no temporary file', async () => {
    const fx = await fixtureRecipe(
      'oneleak',
      'RUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; tar -xf /cpe.tar; rm /cpe.tar',
    );
    const r = await runCli(
      ['release', fx.dir, '--root', 'containers', '--init', '--out', 'sif', '--log-dir', 'logs', '--untested'],
      { cwd: fx.dir },
    );
    expect(r.stderr).toMatch(/licensed file \/opt\/cray\S* is in layer \S+ \(licensed path\)/);
    expect(r.code).toBe(3);
    expect(
      await docker
        .getImage(fx.tag)
        .inspect()
        .then(
          () => true,
          () => false,
        ),
    ).toBe(false);
    expect(await fs.readdir(path.join(fx.dir, 'sif')).catch(() => [])).toEqual([]);
  });
});

describe("one read of a stream whose layer is not a tar sifkit reads (an engine's answer is data)", () => {
  let dir: string;
  let saved: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-one-read-bad-'));
    saved = path.join(dir, 'saved.tar');
    // An xz'd tar (magic FD 37 7A 58 5A 00): neither a plain tar nor gzip, which are what sifkit reads.
    const xz = Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(2000, 7)]);
    await legacyArchive(saved, [await layerTar([{ name: 'a', content: 'one\n' }]), xz]);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const read = async (name: string, needles?: { digests: Map<string, string> }) => {
    const fake = Object.create(engine) as ImageEngine;
    fake.saveImage = async () => createReadStream(saved);
    const out = path.join(dir, name);
    await fs.mkdir(out);
    const p = saveScanConvert(fake, 'sha256:any', {
      signal: new AbortController().signal,
      archive: path.join(out, 'image.tar'),
      sif: path.join(out, 'image.sif'),
      needles,
      source: { bootstrap: 'docker-archive', from: 'image.tar' },
    });
    return { p, out };
  };

  it('the leak scan refuses what it cannot read, rather than pass it unread; nothing is published', async () => {
    const { p, out } = await read('scanned', { digests: new Map() });
    await expect(p).rejects.toMatchObject({
      code: 'leak-scan',
      message: 'image member "l1/layer.tar" is neither a tar, a gzip\'d tar nor text: the scan cannot read it',
    });
    expect((await fs.readdir(out)).sort()).toEqual([]);
  });

  it('without a scan, the converter refuses it: never a SIF without that layer', async () => {
    const { p, out } = await read('unscanned');
    await expect(p).rejects.toMatchObject({
      code: 'bad-layer',
      message: expect.stringMatching(/^layer 2 of image "sha256:any" is not a tar/),
    });
    expect((await fs.readdir(out)).sort()).toEqual([]);
  });
});
