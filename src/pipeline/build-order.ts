/**
 * The run's build plan (build-plan.ts), made once from every variant's
 * rendered definition, and the waits it asks for: a variant whose longest
 * prefix another variant builds on the same engine starts its build when
 * that build has ended, so the prefix runs once and the follower takes it
 * from the layer cache.
 */
import { errnoCode } from '../errors';
import { derivePort, digestOfServed, servedBuildArgs, servedFilesDigest } from '../fileserver/served';
import { servedDigestOf, servingPlan } from '../fileserver/serving';
import { readRecipeInputs, renderRecipe, type RecipeInputs } from '../recipe/render-recipe';
import { buildSteps, imageLineage, type BuildStep } from '../recipe/steps';
import { dockerhashOf } from '../recipe/names';
import { checkParamLabels, resolveValues } from '../recipe/params';
import { LABEL, labelFacts } from '../validate/labels';
import type { RenderedVariant } from '../recipe/render';
import type { Recipe } from '../recipe/types';
import { planBuilds, type BuildPlan, type HeldImage, type PlanServed, type PlannedVariant } from './build-plan';
import type { BuildOrder, PipelineContext, RunServed, VariantState } from './context';

/** Stands for the digest (and port) of a served directory the plan cannot read: the same for every variant of the run. */
const UNKNOWN = "(the run's served files, not read)";

/**
 * The build arguments a build of this variant passes (engine/build.ts):
 * none when nothing is served, else the port and digest of the run's
 * served files, the same for every variant served them. Where the
 * directory is not known (none named though the variant declares served
 * files, whose build is refused; or it could not be read), one stand-in
 * for all: the variants share those steps as their builds would.
 */
export function variantBuildArgs(
  recipe: Recipe,
  rendered: RenderedVariant,
  served: RunServed,
  serverFiles?: string,
): Record<string, string> {
  let digest: string | undefined;
  try {
    digest = servedDigestOf(servingPlan(recipe, rendered, serverFiles), served.digest ?? UNKNOWN);
  } catch {
    digest = UNKNOWN;
  }
  if (digest === undefined) return {};
  return servedBuildArgs(digest, digest === UNKNOWN ? UNKNOWN : derivePort(digest));
}

/** A rendered variant's steps, each per-build ARG keyed by the value its build passes (variantBuildArgs). */
export function variantSteps(
  rendered: RenderedVariant,
  files: Record<string, string>,
  args: Record<string, string>,
): BuildStep[] {
  return buildSteps(rendered.parsed, { files, args });
}

/** The served directory of the run and its digest, hashed once, for the plan and every build. */
export function runServed(ctx: PipelineContext): Promise<RunServed> {
  return ctx.run.served.get(async () => {
    const dir = ctx.options.serverFiles ?? ctx.recipe.serverFiles;
    if (dir === undefined) return {};
    try {
      return { dir, digest: await servedFilesDigest(dir, ctx.signal) };
    } catch (e) {
      // The builds that need it refuse, naming the directory (engine/build.ts); the plan says what it assumed.
      if (ctx.signal.aborted) throw e;
      return { dir, unreadable: errnoCode(e) ?? (e as Error).message };
    }
  });
}

/** What the plan says of the served files its keys stand for, and what it assumed. */
function planServed(served: RunServed, declaring: string[], sources: boolean): PlanServed {
  if (served.digest !== undefined) return { digest: served.digest, port: derivePort(served.digest) };
  if (served.dir !== undefined)
    return {
      assumed: `served directory ${served.dir} could not be read (${served.unreadable}): its steps after ARG SERVER_PORT are keyed as one directory of unknown digest`,
    };
  if (declaring.length === 0) {
    // Sources only: the digest of no files, which every such build passes.
    const none = digestOfServed([]);
    return sources ? { digest: none, port: derivePort(none) } : {};
  }
  return {
    assumed: `no served directory (--server-files, or the recipe's server_files): the ${declaring.length} variant${declaring.length === 1 ? '' : 's'} declaring served files ${declaring.length === 1 ? 'is' : 'are'} keyed as served one directory of unknown digest (${declaring.length === 1 ? 'its build is' : 'their builds are'} refused without one)`,
  };
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
      // Keyed by what this run's builds would pass: that image's steps are shared only if they match.
      const steps = variantSteps(
        rendered,
        inputs.files,
        variantBuildArgs(ctx.recipe, rendered, await runServed(ctx), ctx.options.serverFiles),
      );
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
  const served = await runServed(ctx);
  const declaring: string[] = [];
  let sources = false;
  const steps = await Promise.all(
    ctx.variants.map(async (v) => {
      const rendered =
        v.rendered ??
        (await renderRecipe(ctx.recipe, { values: v.values, date: ctx.date, inputs }).catch(() => undefined));
      if (rendered?.served.length) declaring.push(rendered.names.stem);
      if (rendered?.sources.length) sources = true;
      return (
        rendered &&
        variantSteps(rendered, inputs.files, variantBuildArgs(ctx.recipe, rendered, served, ctx.options.serverFiles))
      );
    }),
  );
  // --rebuild takes nothing from the cache: what is there does not count, and nothing is moved.
  const { cached, images } = ctx.options.rebuild
    ? { cached: new Map(), images: new Map() }
    : await engineCaches(ctx, inputs);
  return {
    ...planBuilds(steps, ctx.options.engines ?? [], cached, images),
    served: planServed(served, declaring, sources),
  };
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
