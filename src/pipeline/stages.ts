import * as path from 'node:path';
import { buildVariant, type BuildRecord } from '../engine/build';
import { readRecipeInputs, renderRecipe, type RecipeInputs } from '../recipe/render-recipe';
import type { PipelineContext, Stage } from './context';
import { engineFor } from './engines';

/** The recipe's inputs, read once per run and shared by every variant's render. */
export function recipeInputs(ctx: PipelineContext): Promise<RecipeInputs> {
  return ctx.run.recipeInputs.get(() => readRecipeInputs(ctx.recipe));
}

export const renderStage: Stage = {
  name: 'render',
  title: 'Render the definition',
  gives: ['rendered'],
  async run(ctx, v, report) {
    const inputs = await recipeInputs(ctx);
    v.rendered = await renderRecipe(ctx.recipe, { values: v.values, date: ctx.date, inputs });
    // Lint warnings and served files that no step fetches: said, not fatal.
    for (const w of v.rendered.warnings)
      report.progress(`warning: ${w.line > 0 ? `Dockerfile line ${w.line}: ` : ''}${w.message}`);
    report.title(`Rendered ${v.rendered.names.stem} (${v.rendered.definitionHash.slice(0, 12)})`);
  },
};

/**
 * Whether the archive stage comes right after the build in this pass: it
 * reads the image once for scan, archive and SIF before anything else uses
 * the image, so the build leaves the scan to it.
 */
function readsOnceLater(ctx: PipelineContext): boolean {
  const pass = ctx.pass ?? [];
  const build = pass.indexOf('build');
  return build >= 0 && pass[build + 1] === 'archive';
}

export const buildStage: Stage = {
  name: 'build',
  title: 'Build the image',
  needs: ['rendered'],
  gives: ['build'],
  async run(ctx, v, report) {
    const o = ctx.options;
    const docker = await engineFor(ctx, v);
    const record: BuildRecord = await ctx.run.slots.use('build', () =>
      buildVariant(docker, {
        recipe: ctx.recipe,
        rendered: v.rendered!,
        serverFiles: o.serverFiles,
        rebuild: o.rebuild,
        sourceCache: o.sourceCache,
        offline: o.offline,
        logDir: o.logDir ?? path.resolve('.sifkit', 'logs'),
        signal: ctx.signal,
        extraLabels: o.extraLabels,
        // The archive stage reads the image once for scan, archive and SIF: the scan waits for it.
        deferScan: readsOnceLater(ctx) ? (pending) => (v.pendingScan = pending) : undefined,
        onProgress: (line) => report.progress(line),
      }),
    );
    v.results.build = record;
    report.title(`${record.reused ? 'Reused' : 'Built'} ${record.tag} (${record.dockerhash})`);
  },
};
