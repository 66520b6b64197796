import * as path from 'node:path';
import { buildVariant, type BuildRecord } from '../engine/build';
import { readRecipeInputs, renderRecipe, type RecipeInputs } from '../recipe/render-recipe';
import type { PipelineContext, Stage } from './context';
import { slot } from './slots';
import { engineFor } from './engines';

const inputsCache = new WeakMap<PipelineContext, Promise<RecipeInputs>>();

/** The recipe's inputs, read once per run and shared by every variant's render. */
export function recipeInputs(ctx: PipelineContext): Promise<RecipeInputs> {
  let p = inputsCache.get(ctx);
  if (!p) {
    p = readRecipeInputs(ctx.recipe);
    inputsCache.set(ctx, p);
  }
  return p;
}

export const renderStage: Stage = {
  name: 'render',
  title: 'Render the definition',
  async run(ctx, v, report) {
    const inputs = await recipeInputs(ctx);
    v.rendered = await renderRecipe(ctx.recipe, { values: v.values, date: ctx.date, inputs });
    report.title(`Rendered ${v.rendered.names.stem} (${v.rendered.definitionHash.slice(0, 12)})`);
  },
};

export interface BuildStageOptions {
  serverFiles?: string;
  rebuild?: boolean;
  logDir?: string;
  extraLabels?: Record<string, string>;
}

export const buildStage: Stage = {
  name: 'build',
  title: 'Build the image',
  async run(ctx, v, report) {
    const o = ctx.options as BuildStageOptions;
    const docker = await engineFor(ctx, v);
    const record: BuildRecord = await slot(ctx, 'build', () => buildVariant(docker, {
      recipe: ctx.recipe,
      rendered: v.rendered!,
      serverFiles: o.serverFiles,
      rebuild: o.rebuild,
      logDir: o.logDir ?? path.resolve('.sifkit', 'logs'),
      signal: ctx.signal,
      extraLabels: o.extraLabels,
      onProgress: (line) => report.progress(line),
    }));
    v.results.build = record;
    report.title(`${record.reused ? 'Reused' : 'Built'} ${record.tag} (${record.dockerhash})`);
  },
};
