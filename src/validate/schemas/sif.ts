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

/** What inspect reads of a CycloneDX SBOM object: its components' names, versions and package URLs. */
export const sbomSchema = z
  .looseObject({
    bomFormat: z.literal('CycloneDX'),
    components: z
      .array(z.looseObject({ name: z.string(), version: z.string().optional(), purl: z.string().optional() }))
      .optional(),
  })
  .transform((d) => ({ components: d.components?.map((c) => ({ name: c.name, version: c.version, purl: c.purl })) }));

/** The provenance object: any JSON object (its fields are shown as they are). */
export const provenanceSchema = z.record(z.string(), z.unknown());
