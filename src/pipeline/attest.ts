/**
 * The convert stage's last step: the SIF's SBOM and provenance objects
 * and, with the run's signing key, its build signature. The provenance is
 * what the run knows of the variant: recipe, parameters, definition hash,
 * each fragment's digest, the context files, the base images, the build
 * arguments, the served files with their roles and digests, the declared
 * sources with their pins, and the engine.
 *
 * Signing happens here, in the controller's process, where the key is:
 * under `--on slurm` too (after the variant's jobs), so the key never
 * reaches a job script, a job's environment or a log.
 */
import * as path from 'node:path';
import { attestSif, type AttestResult } from '../convert/attach';
import { sourceText, type Source } from '../convert/convert';
import { sha256Text, type ProvenanceInput } from '../convert/provenance-doc';
import { defaultVerdictDir, readVerdict } from '../engine/verdict';
import { OperationError } from '../errors';
import { digestOfServed, listServedFiles } from '../fileserver/served';
import { servingPlan } from '../fileserver/serving';
import { servedRole } from '../recipe/served';
import { sourcesOf } from '../recipe/sources';
import { inspectSif, type SifSummary } from '../sif/inspect';
import { sha256File } from '../util/files';
import type { PipelineContext, VariantState } from './context';
import { recipeInputs } from './stages';

/**
 * The served directory's files with their roles and digests. The digest
 * over them is the one the image's scan verdict records: when the files
 * changed since the build, the provenance would describe other files than
 * the build was served, and it is refused.
 */
async function servedFacts(ctx: PipelineContext, v: VariantState, imageId: string): Promise<ProvenanceInput['served']> {
  const dir = servingPlan(ctx.recipe, v.rendered!, ctx.options.serverFiles).dir;
  if (!dir) return undefined;
  const files = [];
  for (const file of await listServedFiles(dir)) {
    const decl = servedRole(file, v.rendered!.served);
    files.push({
      file,
      role: decl.role,
      ...(decl.path ? { path: decl.path } : {}),
      sha256: await sha256File(path.join(dir, file), ctx.signal),
    });
  }
  const digest = digestOfServed(files.map((f) => ({ rel: f.file, sha256: f.sha256 })));
  const verdict = await readVerdict(defaultVerdictDir(), imageId);
  if (verdict?.servedDigest && verdict.servedDigest !== digest)
    throw new OperationError(
      'served-changed',
      `the files in ${dir} changed since ${v.rendered!.names.stem} was built (served digest ${verdict.servedDigest.slice(0, 12)}, now ${digest.slice(0, 12)}); its provenance would name other files`,
      { hint: 'build again (sifkit release scans or rebuilds the image for the files as they are now)' },
    );
  return { digest, files };
}

/**
 * Attaches the SBOM, provenance and (with the run's key) signature to the
 * variant's SIF. The facts of the build (the FROM images resolved, the
 * engine's version) come from its `BuildRecord`, as the build stage asked
 * them: the Dockerfile is not parsed again, nor the engine asked again.
 */
export async function attestVariant(
  ctx: PipelineContext,
  v: VariantState,
  sif: string,
  /** What the SIF was converted from (default: the built image in its engine). */
  source?: Source,
): Promise<AttestResult> {
  const rendered = v.rendered!;
  const build = v.results.build!;
  const inputs = await recipeInputs(ctx);
  const provenance: ProvenanceInput = {
    source: sourceText(source ?? { kind: 'docker-daemon', ref: build.imageId }),
    imageId: build.imageId,
    labels: rendered.labels,
    recipe: rendered.recipe,
    parameters: rendered.values,
    definitionHash: rendered.definitionHash,
    fragments: inputs.fragments.map(([p, text]) => ({ path: p, sha256: sha256Text(text) })),
    contextFiles: inputs.files,
    baseImages: build.baseImages,
    buildArgs: rendered.runtimeArgs,
    served: await servedFacts(ctx, v, build.imageId),
    sources: rendered.sources.length ? sourcesOf(rendered) : undefined,
    engine: { name: 'docker', ...build.engine },
  };
  return attestSif(sif, provenance, { signingKey: ctx.options.signingKey, signal: ctx.signal });
}

/**
 * Whether a SIF carries what this run adds: the SBOM and provenance, and a
 * signature when the run signs. One answer for the local convert stage and
 * the Slurm one; `sif` is its path, or its summary when the caller has read
 * it already (not read a second time).
 */
export async function attested(ctx: PipelineContext, sif: string | SifSummary): Promise<boolean> {
  const s = typeof sif === 'string' ? await inspectSif(sif) : sif;
  return (
    s.objects.some((o) => o.type === 'sbom') &&
    (!ctx.options.signingKey || s.objects.some((o) => o.type === 'signature'))
  );
}
