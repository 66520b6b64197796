/**
 * Moving a prefix between engines, as the build plan says (build-plan.ts):
 * the image another engine holds is saved there and loaded into the
 * variant's engine, streamed from one to the other with nothing on disk,
 * and the build is given it as cache (`cachefrom`), so the steps it holds
 * are taken, not run again. A move that fails costs only time: the
 * variant builds those steps itself, and the failure is said.
 */
import type { ImageEngine } from '../engine/engine';
import type { PrefixMove } from './build-plan';
import type { PipelineContext, StageReporter } from './context';

function engineName(address: string): string {
  return address || 'the default engine';
}

/** Moves the planned image to `target` (unless it is there); the images the build may take steps from. */
export async function movePrefix(
  ctx: PipelineContext,
  move: PrefixMove,
  target: ImageEngine,
  report: StageReporter,
): Promise<string[]> {
  const what = `${move.ref} (${move.heavy} steps) from ${engineName(move.from)}`;
  try {
    // There already (an earlier run's move): nothing to send.
    const there = await target.inspectImage(move.image).then(
      (i) => i.id === move.image,
      () => false,
    );
    if (!there) {
      report.progress(`moving ${what}: docker save | docker load`);
      const source = await ctx.run.engines.connect(move.from);
      await target.loadImage(await source.saveImage(move.ref), ctx.signal);
    }
    return [move.image];
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    report.progress(`warning: could not move ${what} (${(e as Error).message}); building those steps here`);
    return [];
  }
}
