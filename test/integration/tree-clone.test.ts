import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { makeSif } from '../support/sifs';

jest.setTimeout(120_000);

const STEM = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';

/**
 * LUMI's maintainers develop against a clone of the tree made by
 * scripts/link_images.sh (LUMI-EasyBuild-containers): easybuild-sif-images/
 * holds absolute links to the production images of the same name. verify
 * accepts them, and still reports a clone link that dangles or is misnamed.
 */
describe('verify on a development clone of the tree', () => {
  let dir: string;
  let prod: string;
  let clone: string;
  let name: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-clone-'));
    prod = path.join(dir, 'containers');
    clone = path.join(dir, 'clone');
    await fs.mkdir(prod);
    ({ name } = await makeSif(path.join(dir, 'in.sif'), { stem: STEM }));
    expect((await runCli(['stage', path.join(dir, 'in.sif'), '--untested', '--root', prod])).code).toBe(0);
    expect((await runCli(['promote', name, '--to', 'easybuild-sif-images', '--root', prod])).code).toBe(0);
    await fs.mkdir(path.join(clone, 'easybuild-sif-images'), { recursive: true });
    // As link_images.sh does: an absolute link per image, named as the image.
    await fs.symlink(path.join(prod, 'easybuild-sif-images', name), path.join(clone, 'easybuild-sif-images', name));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const problems = async () => {
    const r = await runCli(['verify', '--root', clone, '--json']);
    return JSON.parse(r.stdout).problems as Array<{ kind: string; path: string }>;
  };

  it('finds nothing wrong with absolute links to the images of the same name', async () => {
    expect(await problems()).toEqual([]);
  });

  it('still reports a clone link that dangles, or points at an image of another name', async () => {
    const gone = `${STEM}-dockerhash-000000000000.sif`;
    const other = `${STEM}-dockerhash-111111111111.sif`;
    await fs.symlink(path.join(prod, 'easybuild-sif-images', gone), path.join(clone, 'easybuild-sif-images', gone));
    await fs.symlink(path.join(prod, 'easybuild-sif-images', name), path.join(clone, 'easybuild-sif-images', other));
    const found = (await problems()).map((p) => [p.kind, p.path]).sort();
    expect(found).toEqual([
      ['dangling-link', `easybuild-sif-images/${gone}`],
      ['link-name', `easybuild-sif-images/${other}`],
    ]);
  });
});
