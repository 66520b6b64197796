/**
 * The provenance document a SIF carries beside its SBOM: where the image
 * came from, as far as sifkit knows it at that point. Pure: the caller
 * gathers the facts (the pipeline knows the recipe, its fragments and the
 * build; `sifkit attest` on its own knows only the image's labels).
 */
import { createHash } from 'node:crypto';
import { LABEL } from '../validate/labels';

export interface ProvenanceInput {
  /** docker-daemon:REF or docker-archive:PATH, as converted. */
  source?: string;
  imageId?: string;
  /** The image's labels (definition hash, recipe, parameters, sifkit version that rendered it). */
  labels?: Record<string, string>;
  recipe?: string;
  parameters?: Record<string, string>;
  definitionHash?: string;
  /** Each fragment's path and the sha256 of its text. */
  fragments?: Array<{ path: string; sha256: string }>;
  /** Build-context files by path, with their digests. */
  contextFiles?: Record<string, string>;
  /** FROM images of the definition, with the local image ID each resolved to. */
  baseImages?: Array<{ ref: string; imageId?: string }>;
  /** Build arguments passed at build time (names only: their values are the file server's port and prefix). */
  buildArgs?: string[];
}

export const PROVENANCE_TYPE = 'https://github.com/sifkit/provenance/v1';

export function sha256Text(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** FROM references of a Dockerfile (no `--platform`), less those naming an earlier stage (`FROM rocm AS osu`). */
export function fromImages(dockerfile: string): string[] {
  const out: string[] = [];
  const stages = new Set<string>();
  for (const m of dockerfile.matchAll(/^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/gim)) {
    if (!stages.has(m[1].toLowerCase()) && !out.includes(m[1])) out.push(m[1]);
    if (m[2] !== undefined) stages.add(m[2].toLowerCase());
  }
  return out;
}

function sorted<T>(o: Record<string, T> | undefined): Record<string, T> | undefined {
  return o ? Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : undefined;
}

/** The document's bytes: stable key order, no times (a reproducible SIF stays so). */
export function provenanceDocument(p: ProvenanceInput, sifkitVersion: string): Buffer {
  const labels = p.labels ?? {};
  const params =
    p.parameters ??
    Object.fromEntries(
      Object.entries(labels)
        .filter(([k]) => k.startsWith(LABEL.paramPrefix))
        .map(([k, v]) => [k.slice(LABEL.paramPrefix.length), v]),
    );
  const doc = {
    _type: PROVENANCE_TYPE,
    sifkit: { version: sifkitVersion, renderedBy: labels[LABEL.version], revision: labels[LABEL.revision] },
    source: p.source,
    image: { id: p.imageId, stem: labels[LABEL.stem] },
    recipe: p.recipe ?? labels[LABEL.recipe],
    parameters: sorted(params),
    definitionHash: p.definitionHash ?? labels[LABEL.definitionHash],
    fragments: p.fragments,
    contextFiles: sorted(p.contextFiles),
    baseImages: p.baseImages,
    buildArgs: p.buildArgs,
  };
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n', 'utf8');
}
