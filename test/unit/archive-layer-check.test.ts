/**
 * A docker archive's layers are checked as they are read against the diff
 * IDs its image config names (issue 27): the config's digest is the image
 * ID, so an archive with the image's config and other layer bytes must
 * not pass for the image. Hand-made archives, legacy and OCI with gzip.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { openDockerArchive, type DockerArchive } from '../../src/convert/archive';
import { RefusedError } from '../../src/errors';
import { layerTar, legacyArchive, toOciLayout } from '../support/archives';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-layer-check-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Reads layer `i` to its end, as the converter does. */
async function readLayer(archive: DockerArchive, i: number): Promise<number> {
  let n = 0;
  for await (const chunk of (await archive.openLayer(i)) as Readable) n += (chunk as Buffer).length;
  return n;
}

async function layers(): Promise<Buffer[]> {
  return [
    await layerTar([{ name: 'etc/hello', content: 'hello\n' }]),
    await layerTar([{ name: 'opt/data', content: 'data\n' }]),
  ];
}

describe('a docker archive layer is checked against its diff ID as it is read', () => {
  it('reads layers whose bytes are the diff IDs, legacy and OCI (gzip: the decompressed bytes)', async () => {
    const legacy = path.join(dir, 'legacy.tar');
    const oci = path.join(dir, 'oci.tar');
    const ls = await layers();
    await legacyArchive(legacy, ls);
    await toOciLayout(legacy, oci);
    for (const file of [legacy, oci]) {
      const a = await openDockerArchive(file);
      expect(await readLayer(a, 0)).toBe(ls[0].length);
      expect(await readLayer(a, 1)).toBe(ls[1].length);
    }
  });

  it('refuses (exit 3, one line) a layer whose bytes are not the diff ID its config names', async () => {
    const legacy = path.join(dir, 'legacy.tar');
    const oci = path.join(dir, 'oci.tar');
    const ls = await layers();
    const other = await layerTar([{ name: 'opt/data', content: 'DATA\n' }]);
    // The config names the second layer as it was; the archive holds other bytes of the same size.
    await legacyArchive(legacy, [ls[0], other], { rootfs: { type: 'layers', diff_ids: ls.map(digest) } });
    await toOciLayout(legacy, oci);
    for (const file of [legacy, oci]) {
      const a = await openDockerArchive(file);
      expect(await readLayer(a, 0)).toBe(ls[0].length);
      const e = (await readLayer(a, 1).then(
        () => undefined,
        (err: unknown) => err,
      )) as RefusedError;
      expect(e).toBeInstanceOf(RefusedError);
      expect(e.exitCode).toBe(3);
      expect(e.code).toBe('layer-mismatch');
      expect(e.message).toContain(`${file}: layer 2 `);
      expect(e.message).toContain(`reads as ${digest(other).slice(0, 19)}…, not the ${digest(ls[1]).slice(0, 19)}…`);
      expect(e.message).not.toMatch(/\n/);
    }
  });

  it('refuses to open an archive whose config does not name one digest per layer (exit 2)', async () => {
    const file = path.join(dir, 'short.tar');
    const ls = await layers();
    await legacyArchive(file, ls, { rootfs: { type: 'layers', diff_ids: [digest(ls[0])] } });
    await expect(openDockerArchive(file)).rejects.toMatchObject({
      code: 'bad-archive',
      exitCode: 2,
      message: `${file}: not a readable docker archive: its manifest names 2 layers, its image config 1 diff IDs`,
    });
    await legacyArchive(file, ls, { rootfs: { type: 'layers', diff_ids: [digest(ls[0]), 'md5:00'] } });
    await expect(openDockerArchive(file)).rejects.toMatchObject({ code: 'bad-archive', exitCode: 2 });
  });
});
