/**
 * The provenance document a SIF carries beside its SBOM: where the image
 * came from, as far as sifkit knows it at that point. Pure: the caller
 * gathers the facts (the pipeline knows the recipe, its fragments and the
 * build; `sifkit attest` on its own knows only the image's labels).
 */
import { createHash } from 'node:crypto';
import type { SourceProvenance } from '../recipe/sources';
import { LABEL } from '../validate/labels';
import { parseDocument } from '../validate/schema';
import { PROVENANCE_TYPE, provenanceDocSchema, type ProvenanceDoc } from '../validate/schemas/provenance';

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
  /** The served directory's files, each with its role and digest, and the digest over them all. */
  served?: ProvenanceDoc['served'];
  /** The declared sources the definition fetched, with their pins (recipe/sources.ts sourcesOf). */
  sources?: SourceProvenance[];
  /** The engine converted from (and the version that built the image, when the image records it). */
  engine?: ProvenanceDoc['engine'];
}

export function sha256Text(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sorted<T>(o: Record<string, T> | undefined): Record<string, T> | undefined {
  return o ? Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : undefined;
}

/**
 * The document's bytes: stable key order, no times (a reproducible SIF
 * stays so). Checked against its schema first: a value that breaks it is
 * refused in one line, and nothing is written.
 */
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
    served: p.served && { digest: p.served.digest, files: [...p.served.files].sort((a, b) => byName(a.file, b.file)) },
    sources: p.sources && [...p.sources].sort((a, b) => byName(a.name, b.name)),
    engine: p.engine,
  };
  const text = JSON.stringify(doc, null, 2) + '\n';
  parseDocument(provenanceDocSchema, JSON.parse(text), 'the provenance document', 'bad-provenance');
  return Buffer.from(text, 'utf8');
}
