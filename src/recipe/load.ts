/**
 * The file-reading side of recipes: finding a recipe, reading its fragments
 * and listing (and digesting) its build context. Everything it returns is
 * plain data that the pure renderer takes.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError, errnoCode, isSifkitError } from '../errors';
import { readRegularFile, sha256File } from '../util/files';
import { checkName } from '../validate/names';
import { DockerIgnore } from './dockerignore';
import { defaultDefsRoot, listRecipes } from './list';
import { parseRecipe } from './schema';
import type { ContextFile, Recipe } from './types';

// Their home is list.ts (a TAB lists recipes without this module); named here too for existing callers.
export { defaultDefsRoot, listRecipes };

/**
 * Loads a recipe by name (a directory of the defs root) or by path (a
 * recipe directory or its recipe.yaml), as a person names it on the
 * command line. Fragment paths are relative to the defs root the recipe
 * sits in (its parent directory).
 */
export async function loadRecipe(ref: string, root = defaultDefsRoot()): Promise<Recipe> {
  if (!ref.includes('/') && !ref.endsWith('.yaml')) return loadRecipeByName(ref, root, '--recipe');
  const p = path.resolve(ref);
  return readRecipeFile(ref.endsWith('.yaml') ? p : path.join(p, 'recipe.yaml'), ref, root);
}

/**
 * Loads a recipe by its checked name from the recipe directory, never from
 * a path: the one way for a name read from a label, a ledger or a results
 * file (`source` says which, for the error).
 */
export async function loadRecipeByName(name: string, root = defaultDefsRoot(), source = 'recipe'): Promise<Recipe> {
  checkName('recipe', name, source);
  return readRecipeFile(path.join(root, name, 'recipe.yaml'), name, root);
}

async function readRecipeFile(file: string, ref: string, root: string): Promise<Recipe> {
  let text: string;
  try {
    text = await readRegularFile(file, 'recipe');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
      const known = await listRecipes(root);
      throw new InputError('unknown-recipe', `no recipe ${ref} (looked for ${file})`, {
        // The argument takes a name or a path: the hint names both forms.
        hint: `a recipe is a name in ${root} (${known.join(', ') || 'none there'}), or a path to a recipe.yaml or its directory`,
      });
    }
    throw new InputError('unreadable-recipe', `cannot read ${file}: ${(e as Error).message}`);
  }
  const dir = path.dirname(file);
  const recipe = parseRecipe(text, dir, path.relative(process.cwd(), file) || file);
  if (recipe.context !== undefined) recipe.context = path.resolve(dir, recipe.context);
  if (recipe.serverFiles !== undefined) recipe.serverFiles = path.resolve(dir, recipe.serverFiles);
  for (const s of Object.values(recipe.sources)) if (s.kind === 'local') s.file = path.resolve(dir, s.location);
  return recipe;
}

/** The defs root of a loaded recipe: fragments are named relative to it. */
export function recipeDefsRoot(recipe: Recipe): string {
  return path.dirname(recipe.dir);
}

/** Reads the recipe's fragments, in order, as [relative path, text]. */
export async function readFragments(recipe: Recipe): Promise<Array<[string, string]>> {
  const root = recipeDefsRoot(recipe);
  return Promise.all(
    recipe.fragments.map(async (rel): Promise<[string, string]> => {
      const file = path.resolve(root, rel);
      if (!file.startsWith(root + path.sep))
        throw new InputError('bad-recipe', `${recipe.name}: fragment ${rel} is outside ${root}`);
      try {
        return [rel, await readRegularFile(file, 'fragment')];
      } catch (e) {
        if (isSifkitError(e)) throw e;
        throw new InputError(
          'bad-recipe',
          `${recipe.name}: cannot read fragment ${rel}: ${errnoCode(e) ?? (e as Error).message}`,
        );
      }
    }),
  );
}

export type { ContextFile };

/**
 * Lists a build context depth-first in a stable order, honouring
 * .dockerignore (the .dockerignore and Dockerfile themselves are kept out:
 * sifkit sends its own rendered Dockerfile).
 */
export async function listContext(dir: string): Promise<ContextFile[]> {
  const ignoreText = await fs.readFile(path.join(dir, '.dockerignore'), 'utf8').catch((e) => {
    if (errnoCode(e) === 'ENOENT') return '';
    throw new InputError('unreadable-context', `cannot read ${path.join(dir, '.dockerignore')}: ${errnoCode(e)}`);
  });
  const ignore = new DockerIgnore(ignoreText);
  const out: ContextFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    const abs = rel ? path.join(dir, rel) : dir;
    let entries: string[];
    try {
      entries = (await fs.readdir(abs)).sort();
    } catch (e) {
      throw new InputError(
        'unreadable-context',
        `cannot read context directory ${abs}: ${errnoCode(e) ?? (e as Error).message}`,
      );
    }
    for (const name of entries) {
      const r = rel ? `${rel}/${name}` : name;
      if (!rel && (name === '.dockerignore' || name === 'Dockerfile')) continue;
      const a = path.join(dir, r);
      const st = await fs.lstat(a);
      const excluded = ignore.ignores(r);
      if (st.isDirectory()) {
        if (!excluded)
          out.push({ rel: r, abs: a, type: 'directory', mode: st.mode & 0o7777, size: 0, mtime: st.mtime });
        if (ignore.mustEnter(r)) await walk(r);
      } else if (excluded) {
        continue;
      } else if (st.isSymbolicLink()) {
        out.push({
          rel: r,
          abs: a,
          type: 'symlink',
          mode: st.mode & 0o7777,
          size: 0,
          mtime: st.mtime,
          linkTarget: await fs.readlink(a),
        });
      } else if (st.isFile()) {
        // Fail now, clearly, rather than halfway through streaming the context.
        await fs.access(a, require('node:fs').constants.R_OK).catch(() => {
          throw new InputError('unreadable-context', `context file ${a} is not readable`);
        });
        out.push({ rel: r, abs: a, type: 'file', mode: st.mode & 0o7777, size: st.size, mtime: st.mtime });
      }
    }
  };
  await walk('');
  return out;
}

/** Path -> sha256 (or link target) of every context entry that decides a build. */
export async function digestContext(files: ContextFile[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of files) {
    if (f.type === 'file') out[f.rel] = `${(f.mode & 0o111) !== 0 ? 'x' : '-'}:${await sha256File(f.abs)}`;
    else if (f.type === 'symlink') out[f.rel] = `link:${f.linkTarget}`;
  }
  return out;
}
