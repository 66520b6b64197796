/**
 * The provenance document sifkit writes into a SIF (`provenance.json`,
 * group 1, under the build signature): checked against this schema before
 * it is written, and by whoever reads it back. Strict: a field sifkit does
 * not write is refused. Every field past `_type` and `sifkit` is optional,
 * because `sifkit convert --signing-key` outside a release knows only the
 * image's labels; a release fills them all.
 */
import { z } from 'zod';

export const PROVENANCE_TYPE = 'https://github.com/sifkit/provenance/v1';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in 64 lowercase hex digits');
const imageId = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'an image ID (sha256:<64 hex>)');
/** Versions as engines and sifkit spell them: 20.10.24+dfsg1, 1.41, 0.1.0. */
const version = z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$/, 'a version (letters, digits, . + ~ _ -)');
/** A relative name under the served directory, as recipe/served.ts and fileserver/served.ts give it. */
const servedName = z
  .string()
  .min(1)
  .max(4096)
  .refine((s) => !s.startsWith('/') && !s.split('/').some((p) => p === '' || p === '.' || p === '..'), {
    message: 'a plain relative name',
  });

export const provenanceDocSchema = z.strictObject({
  _type: z.literal(PROVENANCE_TYPE),
  sifkit: z.strictObject({
    version,
    renderedBy: version.optional(),
    revision: z.string().optional(),
  }),
  source: z.string().optional(),
  image: z.strictObject({ id: imageId.optional(), stem: z.string().optional() }),
  recipe: z.string().optional(),
  parameters: z.record(z.string(), z.string()).optional(),
  definitionHash: sha256Hex.optional(),
  fragments: z.array(z.strictObject({ path: z.string(), sha256: sha256Hex })).optional(),
  contextFiles: z.record(z.string(), z.string()).optional(),
  baseImages: z.array(z.strictObject({ ref: z.string(), imageId: imageId.optional() })).optional(),
  buildArgs: z.array(z.string()).optional(),
  /**
   * Every file of the directory the build was served, with its role as the
   * leak scan judged it (undeclared files are licensed) and its digest;
   * `digest` is the one value over all of them the scan verdict and the
   * SERVED_DIGEST build argument carry.
   */
  served: z
    .strictObject({
      digest: sha256Hex,
      files: z.array(
        z.strictObject({
          file: servedName,
          role: z.enum(['licensed', 'tool', 'source']),
          path: z.string().startsWith('/').optional(),
          sha256: sha256Hex,
        }),
      ),
    })
    .optional(),
  /** The declared sources (recipe/sources.ts sourcesOf) the definition fetched, with their pins. */
  sources: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        kind: z.enum(['file', 'git', 'local']),
        url: z.string(),
        sha256: sha256Hex.optional(),
        commit: z
          .string()
          .regex(/^[0-9a-f]{40}$/)
          .optional(),
        submodules: z.boolean().optional(),
      }),
    )
    .optional(),
  /** The engine the image was converted from, and the one that built it when the image records it. */
  engine: z
    .strictObject({
      name: z.literal('docker'),
      version,
      apiVersion: version,
      imageBuiltWith: version.optional(),
    })
    .optional(),
});

export type ProvenanceDoc = z.infer<typeof provenanceDocSchema>;
