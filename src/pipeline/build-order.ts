/**
 * The run's build plan (build-plan.ts), made once from every variant's
 * rendered definition, and the waits it asks for: a variant whose longest
 * prefix another variant builds on the same engine starts its build when
 * that build has ended, so the prefix runs once and the follower takes it
 * from the layer cache.
 */
import { readRecipeInputs, renderRecipe, type RecipeInputs } from '../recipe/render-recipe';
import { buildSteps, imageLineage, type BuildStep } from '../recipe/steps';
import { dockerhashOf } from '../recipe/names';
import { rolesKey } from '../recipe/served';
import { checkParamLabels, resolveValues } from '../recipe/params';
import { LABEL, labelFacts } from '../validate/labels';
import type { RenderedVariant } from '../recipe/render';
import type { Recipe } from '../recipe/types';
import { planBuilds, type BuildPlan, type HeldImage, type PlannedVariant } from './build-plan';
import type { BuildOrder, PipelineContext, VariantState } from './context';

/** A rendered variant's steps, its per-build ARGs keyed by the served files they stand for. */
export function variantSteps(recipe: Recipe, rendered: RenderedVariant, files: Record<string, string>): BuildStep[] {
  const served = rolesKey(rendered.served);
  const args = Object.fromEntries(recipe.runtimeArgs.map((a) => [a, served]));
  return buildSteps(rendered.parsed, { files, args });
}

/** The recipe's inputs, read once per run and shared by every variant's render (and the plan). */
export function recipeInputs(ctx: PipelineContext): Promise<RecipeInputs> {
  return ctx.run.recipeInputs.get(() => readRecipeInputs(ctx.recipe));
}

/**
 * The steps each engine's layer cache holds before the run, read from the
 * images of this recipe there: an image whose labels check against the
 * recipe and whose definition, rendered again from them, has the hash its
 * label records was built from exactly these steps. An image whose labels
 * do not check, or built from another revision, adds nothing; so does an
 * engine that does not answer (the build reports it, the plan does not).
 * Each such image is also one another engine could be given (`images`).
 */
export async function engineCaches(
  ctx: PipelineContext,
  inputs: RecipeInputs,
): Promise<{ cached: Map<string, Set<string>>; images: Map<string, HeldImage[]> }> {
  const cached = new Map<string, Set<string>>();
  const held = new Map<string, HeldImage[]>();
  const addresses = ctx.options.engines?.length ? [...new Set(ctx.options.engines)] : [''];
  for (const address of addresses) {
    const images = await ctx.run.engines
      .connect(address)
      .then((e) => e.listImages(`${LABEL.recipe}=${ctx.recipe.name}`))
      .catch(() => []);
    const keys = new Set<string>();
    const here: HeldImage[] = [];
    for (const image of images) {
      const rendered = await renderedFrom(ctx, inputs, image.labels).catch(() => undefined);
      if (rendered?.definitionHash !== image.labels[LABEL.definitionHash]) continue;
      const steps = variantSteps(ctx.recipe, rendered, inputs.files);
      for (const s of steps) keys.add(s.key);
      // Saved by its own tag when it has one, so it arrives tagged (never a dangling image there).
      const own = image.repoTags.find((t) => t.endsWith(`-dockerhash-${dockerhashOf(image.id)}`));
      here.push({ id: image.id, ref: own ?? image.id, lineage: imageLineage(steps) });
    }
    cached.set(address, keys);
    held.set(address, here);
  }
  return { cached, images: held };
}

/** The variant an image's labels name, rendered as this run renders (its labels checked first). */
async function renderedFrom(
  ctx: PipelineContext,
  inputs: RecipeInputs,
  labels: Record<string, string>,
): Promise<RenderedVariant> {
  const values = checkParamLabels(ctx.recipe, labelFacts(labels, 'an image in the engine').params, 'an image');
  return renderRecipe(ctx.recipe, { values: resolveValues(ctx.recipe, values), date: ctx.date, inputs });
}

/** The plan of these variants over these engines; a variant that does not render is left out (its render stage says why). */
export async function planRun(ctx: PipelineContext): Promise<BuildPlan> {
  const inputs = await recipeInputs(ctx);
  const steps = await Promise.all(
    ctx.variants.map(async (v) => {
      const rendered =
        v.rendered ??
        (await renderRecipe(ctx.recipe, { values: v.values, date: ctx.date, inputs }).catch(() => undefined));
      return rendered && variantSteps(ctx.recipe, rendered, inputs.files);
    }),
  );
  // --rebuild takes nothing from the cache: what is there does not count, and nothing is moved.
  const { cached, images } = ctx.options.rebuild
    ? { cached: new Map(), images: new Map() }
    : await engineCaches(ctx, inputs);
  return planBuilds(steps, ctx.options.engines ?? [], cached, images);
}

export function newBuildOrder(plan: BuildPlan): BuildOrder {
  const ended = new Map<number, { promise: Promise<void>; resolve: () => void }>();
  const slot = (i: number) => {
    let d = ended.get(i);
    if (!d) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      d = { promise, resolve };
      ended.set(i, d);
    }
    return d;
  };
  return {
    plan,
    ended: (i) => slot(i).resolve(),
    // Ctrl-C ends the wait at once; the caller's stage reports the interruption.
    wait: (i, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason as Error);
        const onAbort = () => reject(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
        void slot(i).promise.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      }),
  };
}

/** The run's build order, planned by the first variant that asks. */
export function buildOrder(ctx: PipelineContext): Promise<BuildOrder> {
  return ctx.run.buildOrder.get(async () => newBuildOrder(await planRun(ctx)));
}

/** What the plan says of this variant (undefined when it was left out). */
export function plannedFor(order: BuildOrder, ctx: PipelineContext, v: VariantState): PlannedVariant | undefined {
  const i = ctx.variants.indexOf(v);
  return order.plan.variants.find((p) => p.index === i);
}
