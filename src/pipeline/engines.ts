/*
 * Its own module, below every stage module: the build stage and the release
 * stages both need it, and when it lived in stages.ts the two stage modules
 * imported each other (loading release-stages first lost stages).
 */
import type { EnginePool, PipelineContext, PipelineEngine, VariantState } from './context';

/**
 * The engines at these addresses ('' or none: the default one), each
 * connected (and checked) once, by the first variant that needs it.
 */
export function newEnginePool(
  addresses: readonly string[],
  connect: (address: string | undefined) => Promise<PipelineEngine>,
): EnginePool {
  const connections = new Map<string, Promise<PipelineEngine>>();
  return {
    addressFor(index) {
      return addresses.length ? addresses[index % addresses.length] : '';
    },
    connect(address) {
      let p = connections.get(address);
      if (!p) {
        p = connect(address || undefined);
        connections.set(address, p);
      }
      return p;
    },
  };
}

/**
 * The address of the engine a variant works on: the one its build was
 * planned on (build-order.ts), so archive, convert and test find the image
 * there; before that, with several (--engines), variants are spread over
 * them in turn. Without a variant, the first (or default) one.
 */
export function engineAddress(ctx: PipelineContext, v?: VariantState): string {
  const recorded = v?.results.engine;
  if (recorded !== undefined) return recorded === 'default' ? '' : recorded;
  return ctx.run.engines.addressFor(v ? Math.max(0, ctx.variants.indexOf(v)) : 0);
}

/** That engine, connected. */
export function engineFor(ctx: PipelineContext, v?: VariantState): Promise<PipelineEngine> {
  const address = engineAddress(ctx, v);
  if (v) v.results.engine = address || 'default';
  return ctx.run.engines.connect(address);
}
