/**
 * Small fakes for the pipeline's unit tests: stages that record what ran
 * and can be held at a gate, and contexts whose engine connections are
 * in-memory tokens. No daemon, no engine, no listr2 renderer output.
 */
import type { PipelineContext, PipelineEngine, PipelineOptions, Stage, VariantState } from '../../src/pipeline/context';
import type { PipelineDef } from '../../src/pipeline/definition';
import { newContext, type RunEffects } from '../../src/pipeline/run-state';
import type { ParamValues, Recipe } from '../../src/recipe/types';

/** A stage doing nothing but what the test gives it. */
export function fakeStage(
  name: string,
  run: (ctx: PipelineContext, v: VariantState) => Promise<void>,
  skip?: (v: VariantState) => string | undefined,
): Stage {
  return {
    name,
    title: `fake ${name}`,
    run: (ctx, v) => run(ctx, v),
    ...(skip ? { skip: async (_ctx, v) => skip(v) } : {}),
  };
}

export function defOf(...stages: string[]): PipelineDef {
  return { name: 'fake', description: '', stages: stages.map((stage) => ({ stage, with: {} })) };
}

/** The variant's name in the fakes: its `v` value. */
export const nameOf = (v: VariantState): string => v.values.v;

export const variants = (n: number): ParamValues[] => Array.from({ length: n }, (_, i) => ({ v: `v${i}` }));

/**
 * Work the test lets through one at a time: each caller waits at the gate
 * until the test opens it for the oldest waiter. `inside` and `max` count
 * callers between arriving and leaving.
 */
export class Gate {
  private waiting: Array<() => void> = [];
  inside = 0;
  max = 0;
  get queued(): number {
    return this.waiting.length;
  }
  async pass(): Promise<void> {
    this.inside++;
    this.max = Math.max(this.max, this.inside);
    await new Promise<void>((r) => this.waiting.push(r));
    this.inside--;
  }
  openOne(): void {
    this.waiting.shift()?.();
  }
}

/** Connections that are tokens naming their address, counted by address. */
export function fakeEngines(): { effects: RunEffects; connects: Array<string | undefined> } {
  const connects: Array<string | undefined> = [];
  return {
    connects,
    effects: {
      connectEngine: async (address) => {
        connects.push(address);
        // A token, never called: these tests only look at which connection a variant got.
        return { fakeAddress: address ?? 'default' } as unknown as PipelineEngine;
      },
    },
  };
}

export function fakeContext(
  recipe: Recipe,
  values: ParamValues[],
  options: PipelineOptions = {},
  effects: RunEffects = fakeEngines().effects,
): PipelineContext {
  return newContext({ recipe, values, signal: new AbortController().signal, options, date: '20261201', effects });
}
