/**
 * The files a release ships: the EasyConfig, the Docker definition it
 * installs under share/docker-defs (rendered again from the recipe and
 * checked against the image's definition hash), and the user page.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { renderRecipe } from '../recipe/render-recipe';
import { easyconfigText, userPage } from './easyconfig';
import type { ImageFacts } from './facts';

export interface ReleaseFiles {
  /** File name → content: `<easyconfig>.eb`, `<stem>.docker`, `USER.md`. */
  files: Record<string, string>;
  easyconfig: string;
  docker: string;
}

/**
 * The definition the image was built from: rendered again from the recipe
 * with the parameter values its labels claim (each checked against the
 * recipe's schema when the facts were read), and proven by the image's
 * definition hash. Never taken from a label; without the hash there is
 * nothing to prove it by, and it is refused.
 */
export async function definitionFor(f: ImageFacts): Promise<string> {
  if (!f.definitionHash)
    throw new InputError(
      'no-provenance',
      `${f.sifName} carries no io.sifkit.definition-hash label, so no definition can be proven to be the one it was built from`,
      { hint: 'convert it with sifkit convert from an image sifkit built' },
    );
  const missing = f.recipe.parameters.find((p) => f.values[p.name] === undefined);
  if (missing)
    throw new InputError(
      'no-provenance',
      `${f.sifName} carries no io.sifkit.param.${missing.name} label, so its definition cannot be rendered again from recipe ${f.recipe.name}`,
    );
  // Rendered the way a release renders (fragments and context read once, by recipe/render-recipe.ts).
  const rendered = await renderRecipe(f.recipe, { values: f.values, date: f.date });
  if (rendered.definitionHash !== f.definitionHash)
    throw new InputError(
      'definition-changed',
      `the recipe ${f.recipe.name} no longer renders the definition ${f.sifName} was built from (hash ${rendered.definitionHash.slice(0, 12)}, image ${f.definitionHash.slice(0, 12)})`,
      { hint: 'check out the docker-defs the image was built with' },
    );
  return rendered.dockerfile;
}

/**
 * `treeRoot`, the tree the image was published from, is not written into
 * any of these files: they name LUMI's central tree (easyconfig.ts).
 */
export async function releaseFiles(f: ImageFacts, treeRoot?: string): Promise<ReleaseFiles> {
  void treeRoot;
  const easyconfig = f.names.easyconfig;
  const docker = `${f.stem}.docker`;
  const files: Record<string, string> = {
    [easyconfig]: easyconfigText(f),
    [docker]: await definitionFor(f),
  };
  const template = path.join(f.recipe.dir, 'USER.md');
  const text = await fs.readFile(template, 'utf8').catch(() => undefined);
  if (text !== undefined) files['USER.md'] = userPage(text, f);
  return { files, easyconfig, docker };
}
