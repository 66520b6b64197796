/**
 * Where a variant's outputs go, and the build they come from: one answer
 * for the stages (release-stages.ts) and the Slurm executor alike.
 */
import * as path from 'node:path';
import { InputError } from '../errors';
import type { BuildRecord } from '../engine/build-record';
import { sifFileName } from '../recipe/names';
import type { PipelineContext, VariantState } from './context';

/** The variant's build record; a pipeline without a build stage before this point is bad input. */
export function built(v: VariantState): BuildRecord {
  const b = v.results.build;
  if (!b) throw new InputError('no-build', 'this stage needs the build stage before it in the pipeline');
  return b;
}

/** The variant's SIF name, `<stem>-dockerhash-<12 hex>.sif`. */
export function sifName(v: VariantState): string {
  return sifFileName(v.rendered!.names.stem, built(v).dockerhash);
}

/** The variant's SIF in the output directory. */
export function sifPath(ctx: PipelineContext, v: VariantState): string {
  return path.join(path.resolve(ctx.options.outDir ?? path.join('.sifkit', 'sif')), sifName(v));
}

/** The `docker save` tar LUMI ships beside the SIF: same name, `.tar`. */
export function dockerArchivePath(ctx: PipelineContext, v: VariantState): string {
  return sifPath(ctx, v).replace(/\.sif$/, '.tar');
}
