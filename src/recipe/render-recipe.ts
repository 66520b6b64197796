/**
 * Rendering from a recipe on disk: read what the pure renderer needs
 * (fragments, context digests) and hand it plain data. The library's
 * `render` and the pipeline's render stage both go through here.
 */
import { provenance } from '../provenance';
import { digestContext, listContext, loadRecipe, readFragments, type ContextFile } from './load';
import { resolveValues } from './params';
import { renderVariant, type RenderedVariant } from './render';
import { ymd } from './names';
import type { ParamValues, Recipe } from './types';

/** What a recipe's renders read from disk; the same for every variant. */
export interface RecipeInputs {
  fragments: Array<[string, string]>;
  /** The build context, listed once: the entries the digests cover and the build streams. */
  context: ContextFile[];
  /** Digests of the build-context files, by relative path. */
  files: Record<string, string>;
}

export async function readRecipeInputs(recipe: Recipe): Promise<RecipeInputs> {
  const context = recipe.context ? await listContext(recipe.context) : [];
  return { fragments: await readFragments(recipe), context, files: await digestContext(context) };
}

export interface RenderOptions {
  /** Parameter values over the recipe's defaults; unknown names and bad values are refused. */
  values?: ParamValues;
  /** YYYYMMDD for the EasyConfig name (default: today). */
  date?: string;
  /** Already read inputs, when rendering many variants of one recipe. */
  inputs?: RecipeInputs;
}

/** Renders one variant of a recipe given by name (in docker-defs/), path, or as loaded. */
export async function renderRecipe(recipe: Recipe | string, opts: RenderOptions = {}): Promise<RenderedVariant> {
  const r = typeof recipe === 'string' ? await loadRecipe(recipe) : recipe;
  const values = resolveValues(r, opts.values ?? {});
  const inputs = opts.inputs ?? (await readRecipeInputs(r));
  return renderVariant({
    recipe: r,
    values,
    fragments: inputs.fragments,
    files: inputs.files,
    context: inputs.context,
    provenance: provenance(),
    date: opts.date ?? ymd(new Date()),
  });
}
