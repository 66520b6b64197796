/**
 * The convert stage's last step: the SIF's SBOM and provenance objects
 * and, with the run's signing key, its build signature. The provenance is
 * what the run knows of the variant: recipe, parameters, definition hash,
 * each fragment's digest, the context files, the base images and the
 * build arguments.
 */
import { attestSif, type AttestResult } from '../convert/attach';
import { fromImages, sha256Text, type ProvenanceInput } from '../convert/provenance-doc';
import type { ImageEngine } from '../engine/engine';
import type { PipelineContext, VariantState } from './context';
import { recipeInputs } from './stages';

export async function attestVariant(
  ctx: PipelineContext,
  v: VariantState,
  sif: string,
  engine: ImageEngine,
): Promise<AttestResult> {
  const rendered = v.rendered!;
  const build = v.results.build!;
  const inputs = await recipeInputs(ctx);
  const baseImages = [];
  for (const ref of fromImages(rendered.dockerfile)) {
    const imageId = await engine.inspectImage(ref).then(
      (d) => d.id,
      () => undefined,
    );
    baseImages.push({ ref, imageId });
  }
  const provenance: ProvenanceInput = {
    source: `docker-daemon:${build.imageId}`,
    imageId: build.imageId,
    labels: rendered.labels,
    recipe: rendered.recipe,
    parameters: rendered.values,
    definitionHash: rendered.definitionHash,
    fragments: inputs.fragments.map(([p, text]) => ({ path: p, sha256: sha256Text(text) })),
    contextFiles: inputs.files,
    baseImages,
    buildArgs: rendered.runtimeArgs,
  };
  return attestSif(sif, provenance, { signingKey: ctx.options.signingKey, signal: ctx.signal });
}
