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
