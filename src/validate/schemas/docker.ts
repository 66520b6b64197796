/**
 * The Docker and OCI documents sifkit reads: a `docker save` archive's
 * manifest.json and image config, and the OCI `config` section (also kept
 * in a SIF as oci-config.json). Only the fields sifkit uses are checked;
 * the rest pass through untouched (`looseObject`), as engines add fields.
 */
import { z } from 'zod';

const strings = z.array(z.string());

export const ociConfigSchema = z.looseObject({
  Env: strings.nullish(),
  Entrypoint: strings.nullish(),
  Cmd: strings.nullish(),
  Labels: z.record(z.string(), z.string()).nullish(),
  WorkingDir: z.string().nullish(),
  User: z.string().nullish(),
});
export type OciConfig = z.infer<typeof ociConfigSchema>;

export const imageConfigSchema = z.looseObject({
  architecture: z.string().optional(),
  created: z.string().optional(),
  config: ociConfigSchema.optional(),
  rootfs: z.looseObject({ diff_ids: strings.optional() }).optional(),
});
export type ImageConfig = z.infer<typeof imageConfigSchema>;

export const archiveManifestSchema = z.array(
  z.looseObject({
    Config: z.string().min(1),
    RepoTags: strings.nullish(),
    Layers: strings,
  }),
);
export type ArchiveManifest = z.infer<typeof archiveManifestSchema>;

/** Deeper than any document an engine writes (an image config is 4 or 5 levels). */
export const MAX_JSON_DEPTH = 64;

/**
 * Any JSON document, nested no deeper than MAX_JSON_DEPTH: the leak scan
 * walks every value of an archive's JSON members, and a hostile member
 * nested a million deep must be one line, not a stack overflow. The walk
 * here keeps its own stack.
 */
export const shallowJsonSchema = z.unknown().superRefine((doc, ctx) => {
  const stack: Array<{ v: unknown; depth: number; path: PropertyKey[] }> = [{ v: doc, depth: 0, path: [] }];
  while (stack.length) {
    const { v, depth, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) {
      ctx.addIssue({
        code: 'custom',
        path: path.slice(0, 3),
        message: `a document nested no deeper than ${MAX_JSON_DEPTH} levels`,
      });
      return;
    }
    for (const [k, c] of Object.entries(v))
      stack.push({ v: c, depth: depth + 1, path: [...path, Array.isArray(v) ? Number(k) : k] });
  }
});
