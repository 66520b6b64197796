import { digestContext, listContext, readFragments } from '../recipe/load';
import { renderVariant } from '../recipe/render';
import { provenance } from '../provenance';
import type { PipelineContext, Stage } from './context';

/** Inputs read once per run and shared by every variant's render. */
interface RecipeInputs {
  fragments: Array<[string, string]>;
  files: Record<string, string>;
}
const inputsCache = new WeakMap<PipelineContext, Promise<RecipeInputs>>();

export function recipeInputs(ctx: PipelineContext): Promise<RecipeInputs> {
  let p = inputsCache.get(ctx);
  if (!p) {
    p = (async () => ({
      fragments: await readFragments(ctx.recipe),
      files: ctx.recipe.context ? await digestContext(await listContext(ctx.recipe.context)) : {},
    }))();
    inputsCache.set(ctx, p);
  }
  return p;
}

export const renderStage: Stage = {
  name: 'render',
  title: 'Render the definition',
  async run(ctx, v, report) {
    const inputs = await recipeInputs(ctx);
    v.rendered = renderVariant({
      recipe: ctx.recipe,
      values: v.values,
      fragments: inputs.fragments,
      files: inputs.files,
      provenance: provenance(),
      date: ctx.date,
    });
    report.title(`Rendered ${v.rendered.names.stem} (${v.rendered.definitionHash.slice(0, 12)})`);
  },
};

/** Every stage sifkit knows, by the name pipeline files use. Later stages register here. */
export const STAGES: Record<string, Stage> = {
  render: renderStage,
};
