import { loadRecipe, readFragments, digestContext, listContext } from '../../src/recipe/load';
import { resolveValues, variantValues } from '../../src/recipe/params';
import { renderVariant, type RenderedVariant } from '../../src/recipe/render';
import type { ParamValues } from '../../src/recipe/types';

/** Fixed provenance so rendered text does not depend on the commit under test. */
export const TEST_PROVENANCE = { sifkitVersion: '0.0.0-test', revision: 'test-revision' };

export async function renderFor(recipeName: string, given: ParamValues, date = '20241007'): Promise<RenderedVariant> {
  const recipe = await loadRecipe(recipeName);
  const context = recipe.context ? await listContext(recipe.context) : [];
  const files = await digestContext(context);
  return renderVariant({
    recipe,
    context,
    values: resolveValues(recipe, given),
    fragments: await readFragments(recipe),
    files,
    provenance: TEST_PROVENANCE,
    date,
  });
}

/** Every variant of a recipe's matrix, rendered without a build context (steps and text only). */
export async function renderMatrix(recipeName: string, date = '20241007'): Promise<RenderedVariant[]> {
  const recipe = await loadRecipe(recipeName);
  const fragments = await readFragments(recipe);
  return variantValues(recipe, {}, true).map((values) =>
    renderVariant({ recipe, values, fragments, files: {}, provenance: TEST_PROVENANCE, date }),
  );
}

/**
 * A recipe of one fragment (`NAME/a.docker`) and one version parameter `v`,
 * as YAML text; `rest` adds its lines (sources, a matrix).
 */
export function tinyRecipeText(name: string, ...rest: string[]): string {
  return [
    `name: ${name}`,
    'naming: { version: v, parts: [[v, v]] }',
    `fragments: [${name}/a.docker]`,
    'runtime_args: [SERVER_PORT]',
    'parameters:',
    '  v: { type: version, default: 1.0.0 }',
    ...rest,
  ].join('\n');
}
