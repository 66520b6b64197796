import type { CommandIO } from './run';
import { wholeNumber } from './stage-flags';
import {
  chooseRenderer,
  InputError,
  loadPipeline,
  loadRecipe,
  newContext,
  parseSets,
  type PipelineContext,
  type PipelineDef,
  type PipelineOptions,
  type Recipe,
  type RunEffects,
  runPipeline,
  selectChecks,
  type RunSettings,
  STAGES,
  variantValues,
  ymd,
} from '../index';

export interface VariantFlags {
  set?: string[];
  matrix?: boolean;
  date?: string;
  jobs?: string;
}

/**
 * Loads the recipe, resolves the variants (all values validated before
 * anything runs) and runs the named pipeline through listr2.
 */
export async function runRecipePipeline(
  pipeline: string,
  recipeRef: string,
  flags: VariantFlags,
  io: CommandIO,
  options: PipelineOptions = {},
  /** Runs the loaded pipeline (default: everything here); --on slurm hands conversion and tests to the scheduler. */
  execute: (def: PipelineDef, ctx: PipelineContext, settings: RunSettings) => Promise<void> = (def, ctx, settings) =>
    runPipeline(def, ctx, STAGES, settings),
  /** The effects the run reaches through its context (default: the real ones). */
  effects?: RunEffects,
): Promise<PipelineContext> {
  const def = await loadPipeline(pipeline, STAGES);
  const recipe = await loadRecipe(recipeRef);
  const values = variantValues(recipe, parseSets(flags.set ?? []), Boolean(flags.matrix));
  checkRecipeFlags(recipe, flags.date, options.test?.only);
  const jobs = wholeNumber(flags.jobs, '--jobs', 1, 64, 'bad-jobs') ?? 1;
  const ctx = newContext({ recipe, values, signal: io.signal, options, date: flags.date ?? ymd(new Date()), effects });
  const renderer = chooseRenderer(io.json);
  io.liveDisplay = renderer === 'default';
  try {
    await execute(def, ctx, { renderer, jobs });
  } finally {
    io.liveDisplay = false;
  }
  return ctx;
}

/**
 * The flags whose meaning depends on the recipe, checked before any build
 * (and by --dry-run, which builds nothing but must refuse what a run would).
 */
export function checkRecipeFlags(recipe: Recipe, date: string | undefined, only: string[] | undefined): void {
  if (date !== undefined && !isCalendarDate(date)) throw new InputError('bad-date', `--date ${date} is not YYYYMMDD`);
  // A --check the recipe lacks is refused before any build, not at the test stage.
  if (only) selectChecks(recipe.checks, only, recipe.name);
}

/** YYYYMMDD of a day that exists (20241301 does not). */
function isCalendarDate(text: string): boolean {
  if (!/^20\d{6}$/.test(text)) return false;
  const [y, m, d] = [text.slice(0, 4), text.slice(4, 6), text.slice(6)].map(Number);
  const day = new Date(Date.UTC(y, m - 1, d));
  return day.getUTCFullYear() === y && day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
}

/** The first variant error, rethrown, once every variant has had its go. */
export function throwFirstVariantError(ctx: PipelineContext): void {
  const failed = ctx.variants.filter((v) => v.error);
  if (failed.length === 0) return;
  throw failed[0].error!;
}
