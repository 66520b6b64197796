/**
 * The run's build plan (build-plan.ts), made once from every variant's
 * rendered definition, and the waits it asks for: a variant whose longest
 * prefix another variant builds on the same engine starts its build when
 * that build has ended, so the prefix runs once and the follower takes it
 * from the layer cache.
 */
import { readRecipeInputs, renderRecipe, type RecipeInputs } from '../recipe/render-recipe';
import { buildSteps, type BuildStep } from '../recipe/steps';
import { rolesKey } from '../recipe/served';
import type { RenderedVariant } from '../recipe/render';
import type { Recipe } from '../recipe/types';
import { planBuilds, type BuildPlan, type PlannedVariant } from './build-plan';
import type { BuildOrder, PipelineContext, VariantState } from './context';

/** A rendered variant's steps, its per-build ARGs keyed by the served files they stand for. */
export function variantSteps(recipe: Recipe, rendered: RenderedVariant, files: Record<string, string>): BuildStep[] {
  const served = rolesKey(rendered.served);
  const args = Object.fromEntries(recipe.runtimeArgs.map((a) => [a, served]));
  return buildSteps(rendered.dockerfile, { files, args });
}

/** The recipe's inputs, read once per run and shared by every variant's render (and the plan). */
export function recipeInputs(ctx: PipelineContext): Promise<RecipeInputs> {
  return ctx.run.recipeInputs.get(() => readRecipeInputs(ctx.recipe));
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
  return planBuilds(steps, ctx.options.engines ?? []);
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
