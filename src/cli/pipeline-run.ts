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
  type RunEffects,
  runPipeline,
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
  if (flags.date !== undefined && !/^20\d{6}$/.test(flags.date))
    throw new InputError('bad-date', `--date ${flags.date} is not YYYYMMDD`);
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

/** The first variant error, rethrown, once every variant has had its go. */
export function throwFirstVariantError(ctx: PipelineContext): void {
  const failed = ctx.variants.filter((v) => v.error);
  if (failed.length === 0) return;
  throw failed[0].error!;
}
