/**
 * The names a built image answers to, on the real engine, for the example's
 * two-variant matrix: each image keeps a tag of its own
 * (`<variant tag>-dockerhash-<hash>`, as its SIF is named), and a variant's
 * tag names the image its last build used. So `docker run` of a printed
 * image tag gives that image, whatever was built after it, and no image
 * sifkit built is left untagged (what `docker image prune` removes).
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { docker } from '../support/engine';

jest.setTimeout(900_000);

interface Built {
  imageId: string;
  dockerhash: string;
  tag: string;
  imageTag: string;
}

describe("sifkit build of the example's matrix: every image its own tag", () => {
  // Verdicts of this run apart from the user's, so each image is scanned here (the CLI children inherit it).
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'sifkit-h43-tags-'));
  afterAll(() => fs.rm(stateDir, { recursive: true, force: true }));

  it('tags each variant image with its own tag, and the variant tag with the last image built for it', async () => {
    const run = async () => {
      const r = await runCli(['build', 'mpi4py-cpu', '--matrix', '--json', '--log-dir', path.join(stateDir, 'logs')], {
        env: { SIFKIT_STATE_DIR: stateDir },
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as { images: Built[] }).images;
    };
    const images = await run();
    expect(images).toHaveLength(2);
    expect(new Set(images.map((i) => i.imageId)).size).toBe(2);
    for (const img of images) {
      expect(img.imageTag).toBe(`${img.tag}-dockerhash-${img.dockerhash}`);
      // The engine resolves the image's own tag to exactly this image.
      expect((await docker.getImage(img.imageTag).inspect()).Id).toBe(img.imageId);
    }
    // Each variant tag names one of the images built for it: the last, in the order the builds ended.
    for (const tag of new Set(images.map((i) => i.tag))) {
      const owner = (await docker.getImage(tag).inspect()).Id;
      expect(images.filter((i) => i.tag === tag).map((i) => i.imageId)).toContain(owner);
    }
    // A second build reuses both, and every tag still names the same image.
    const again = await run();
    expect(again.map((i) => [i.imageId, i.imageTag])).toEqual(images.map((i) => [i.imageId, i.imageTag]));
    for (const img of again) expect((await docker.getImage(img.imageTag).inspect()).Id).toBe(img.imageId);
  });
});
