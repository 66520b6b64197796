/**
 * The JSON objects inside a SIF that sifkit reads: the labels object, the
 * inspect-metadata.json apptainer writes (labels, environment scripts,
 * runscript) and oci-config.json (see docker.ts).
 */
import { z } from 'zod';

/** Labels are strings in Docker and in apptainer alike. */
export const labelsSchema = z.record(z.string(), z.string());

export const inspectMetadataSchema = z.looseObject({
  data: z
    .looseObject({
      attributes: z
        .looseObject({
          labels: labelsSchema.nullish(),
          environment: z.record(z.string(), z.string()).nullish(),
          runscript: z.string().nullish(),
          startscript: z.string().nullish(),
          deffile: z.string().nullish(),
        })
        .nullish(),
    })
    .nullish(),
});
export type InspectMetadataDoc = z.infer<typeof inspectMetadataSchema>;

/**
 * What inspect checks of a CycloneDX SBOM object (the whole of CycloneDX's
 * own schema takes seconds to compile; the SBOM was validated against it
 * when sifkit wrote it): its format, and its components' names, versions
 * and package URLs.
 */
export const sbomSchema = z.looseObject({
  bomFormat: z.literal('CycloneDX'),
  specVersion: z.string(),
  components: z
    .array(z.looseObject({ name: z.string(), version: z.string().optional(), purl: z.string().optional() }))
    .optional(),
});
export type SbomDoc = z.infer<typeof sbomSchema>;
