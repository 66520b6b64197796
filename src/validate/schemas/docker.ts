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
