/** The record retire leaves beside a quarantined image (`<name>.retired.json`). */
import { z } from 'zod';

export const retiredRecordSchema = z.looseObject({
  name: z.string().optional(),
  dir: z.string().optional(),
  retiredAt: z.string().refine((t) => !Number.isNaN(Date.parse(t)), 'a date'),
  rule: z.string(),
  by: z.string().optional(),
});
export type RetiredRecord = z.infer<typeof retiredRecordSchema>;
