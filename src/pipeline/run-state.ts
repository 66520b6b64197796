/**
 * A pipeline run's context, made once per run: the typed options, the
 * variants, and the run's state (engine pool, slots, what is done once).
 * Two runs in one process share nothing.
 */
import { connectEngine } from '../engine/client';
import { newFileServers } from '../fileserver/shared';
import type { ParamValues, Recipe } from '../recipe/types';
import type { ConnectEngine, PipelineContext, PipelineOptions, RunState } from './context';
import { newEnginePool } from './engines';
import { once } from './once';
import { newSlots } from './slots';

/** The effects a run reaches through its context; tests pass in-memory ones. */
export interface RunEffects {
  connectEngine: ConnectEngine;
}

export const realEffects: RunEffects = Object.freeze({
  connectEngine: (address: string | undefined, signal: AbortSignal) => connectEngine(signal, address),
});

export function createRun(options: PipelineOptions, signal: AbortSignal, effects: RunEffects = realEffects): RunState {
  return {
    engines: newEnginePool(options.engines ?? [], (address) => effects.connectEngine(address, signal)),
    slots: newSlots(options.slots),
    recipeInputs: once(),
    buildOrder: once(),
    served: once(),
    fileServers: newFileServers(),
    retire: once(),
  };
}

export interface ContextInput {
  recipe: Recipe;
  /** One per variant, in order. */
  values: ParamValues[];
  signal: AbortSignal;
  options?: PipelineOptions;
  /** YYYYMMDD for EasyConfig names. */
  date: string;
  effects?: RunEffects;
}

export function newContext(input: ContextInput): PipelineContext {
  const options = input.options ?? {};
  return {
    recipe: input.recipe,
    variants: input.values.map((values) => ({ values, results: {}, skipped: {} })),
    signal: input.signal,
    options,
    date: input.date,
    run: createRun(options, input.signal, input.effects),
  };
}
