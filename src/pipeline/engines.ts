import { connectEngine } from '../engine/client';
import type { ImageEngine } from '../engine/engine';
import type { PipelineContext, VariantState } from './context';

/*
 * Its own module, below every stage module: the build stage and the release
 * stages both need it, and when it lived in stages.ts the two stage modules
 * imported each other (loading release-stages first lost stages).
 */
const engines = new WeakMap<PipelineContext, Map<string, Promise<ImageEngine>>>();

/**
 * The engine a variant builds on: with several (--engines), variants are
 * spread over them in turn; each connection is checked once per run.
 */
export function engineFor(ctx: PipelineContext, v?: VariantState): Promise<ImageEngine> {
  const list = (ctx.options.engines as string[] | undefined) ?? [];
  const address = list.length && v ? list[ctx.variants.indexOf(v) % list.length] : list[0] ?? '';
  let byAddress = engines.get(ctx);
  if (!byAddress) engines.set(ctx, (byAddress = new Map()));
  let p = byAddress.get(address);
  if (!p) {
    p = connectEngine(ctx.signal, address || undefined);
    byAddress.set(address, p);
  }
  if (v) v.results.engine = address || 'default';
  return p;
}
