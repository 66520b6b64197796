/**
 * An argument that takes several forms names every one of them when it
 * refuses a value: `restore zzz` said only what a file name looks like,
 * though restore takes a dockerhash too.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { restore } from '../../src/tree/quarantine';
import { stagedName } from '../../src/tree/promote';
import { locateSif } from '../../src/easybuild/facts';
import { loadRecipe } from '../../src/recipe/load';
import { loadPipeline } from '../../src/pipeline/definition';
import type { Tree } from '../../src/tree/root';

const FILE_FORM = 'an image file name <stem>-dockerhash-<12 hex>.sif (.sif may be left off)';
// The name is refused before the tree is read: no tree is needed.
const noTree = {} as Tree;

describe('every form an argument takes, in its refusal', () => {
  it.each(['zzz', 'zzz.sif', 'lumi-x-dockerhash-12.sif'])('restore %s: a file name or a dockerhash', async (arg) => {
    await expect(restore(noTree, arg)).rejects.toMatchObject({
      code: 'bad-name',
      message: `restore NAME: ${JSON.stringify(arg)} is not ${FILE_FORM}, nor a dockerhash (12 hex digits, as status shows it)`,
    });
  });
  it('promote: a file name or a path in tested-containers/', () => {
    expect(() => stagedName('zzz')).toThrow(
      `image NAME: "zzz" is not ${FILE_FORM}, nor a path to it in tested-containers/`,
    );
    expect(() => stagedName('/t/tested-containers/zzz.sif')).toThrow(
      `image NAME: "zzz.sif" is not ${FILE_FORM}, nor a path to it in tested-containers/`,
    );
  });
  it('easyconfig, module, publish: a file name in the tree or a path to a SIF', async () => {
    await expect(locateSif('zzz', noTree)).rejects.toThrow(
      `image NAME: "zzz" is not ${FILE_FORM}, nor a path to a SIF (one with a /)`,
    );
  });
  it('a recipe: a name in the recipe directory or a path', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'forms-'));
    try {
      await fs.mkdir(path.join(root, 'one'));
      await fs.writeFile(path.join(root, 'one', 'recipe.yaml'), '');
      await expect(loadRecipe('zzz', root)).rejects.toMatchObject({
        code: 'unknown-recipe',
        hint: `a recipe is a name in ${root} (one), or a path to a recipe.yaml or its directory`,
      });
    } finally {
      await fs.rm(root, { recursive: true });
    }
  });
  it('a pipeline: a name in the pipelines directory or a path to a YAML file', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'forms-'));
    try {
      await fs.writeFile(path.join(root, 'b.yaml'), '');
      await fs.writeFile(path.join(root, 'a.yaml'), '');
      await expect(loadPipeline('zzz', {}, root)).rejects.toMatchObject({
        code: 'unknown-pipeline',
        hint: `a pipeline is a name in ${root} (a, b), or a path to a YAML file`,
      });
    } finally {
      await fs.rm(root, { recursive: true });
    }
  });
});
