/**
 * The host compatibility check a release runs before its tests, locally
 * and on Slurm alike: an image that breaks on a host the tree records
 * (`sifkit host record`) goes no further (exit 3); `--no-compat` skips it.
 * The one home of that decision for both test stages.
 */
import type { CompatImage } from '../compat/run';
import { checkAgainstRecorded } from '../tree/compat';
import type { PipelineContext, VariantState } from './context';
import { engineFor } from './engines';
import { sifName } from './outputs';

/**
 * Checks `image` (the SIF, or the built image in its engine when the SIF is
 * yet to be made, as on Slurm, where conversion and tests are one submission).
 */
export async function compatBeforeTests(ctx: PipelineContext, v: VariantState, image: CompatImage): Promise<void> {
  if (!ctx.options.tree || ctx.options.compat === false) return;
  await checkAgainstRecorded(ctx.options.tree, image, sifName(v), {
    signal: ctx.signal,
    engine: () => engineFor(ctx, v),
  });
}
