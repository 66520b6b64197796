import * as path from 'node:path';
import { buildVariant } from '../engine/build';
import type { BuildRecord } from '../engine/build-record';
import { renderRecipe } from '../recipe/render-recipe';
import { buildOrder, plannedFor, recipeInputs, runServed } from './build-order';
import type { PipelineContext, Stage } from './context';
import { engineAddress, engineFor } from './engines';
import { movePrefix } from './prefix-move';

export { recipeInputs };

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
    // The plan puts the variant on the engine that holds its longest prefix, after the variant that builds it.
    const order = await buildOrder(ctx);
    const planned = plannedFor(order, ctx, v);
    if (planned) v.results.engine = planned.engine || 'default';
    if (planned?.after !== undefined) {
      report.progress(
        `waiting for ${ctx.variants[planned.after].rendered?.names.stem ?? 'the variant'} to build the ${planned.shared - planned.cached} steps they share`,
      );
      await order.wait(planned.after, ctx.signal);
    }
    try {
      const docker = await engineFor(ctx, v);
      // Steps another engine holds, brought here when the plan says that is cheaper than running them.
      const cacheFrom = planned?.move && !o.rebuild ? await movePrefix(ctx, planned.move, docker, report) : undefined;
      const served = await runServed(ctx);
      // A build slot on its own engine: the engines' lines build side by side.
      const record: BuildRecord = await ctx.run.slots.use(
        'build',
        () =>
          buildVariant(docker, {
            recipe: ctx.recipe,
            rendered: v.rendered!,
            serverFiles: o.serverFiles,
            // The run's file servers and its served files' digest: builds of the same files at once share one
            // server, so they pass the same SERVER_PORT and SERVED_DIGEST, the ones the plan keyed.
            fileServers: ctx.run.fileServers,
            servedDirDigest: served.digest,
            rebuild: o.rebuild,
            sourceCache: o.sourceCache,
            offline: o.offline,
            logDir: o.logDir ?? path.resolve('.sifkit', 'logs'),
            signal: ctx.signal,
            extraLabels: o.extraLabels,
            cacheFrom,
            // The archive stage reads the image once for scan, archive and SIF: the scan waits for it.
            deferScan: readsOnceLater(ctx) ? (pending) => (v.pendingScan = pending) : undefined,
            onProgress: (line) => report.progress(line),
          }),
        engineAddress(ctx, v),
      );
      v.results.build = record;
      report.title(`${record.reused ? 'Reused' : 'Built'} ${record.tag} (${record.dockerhash})`);
    } finally {
      // Built or failed: whoever waits on this variant's prefix goes on (and builds it itself if it failed).
      order.ended(ctx.variants.indexOf(v));
    }
  },
};
