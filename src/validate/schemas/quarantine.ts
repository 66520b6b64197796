/** The record retire leaves beside a quarantined image (`<name>.retired.json`). */
import { z } from 'zod';
import { statKeySchema } from './ledger';

export const retiredRecordSchema = z.looseObject({
  name: z.string().optional(),
  dir: z.string().optional(),
  retiredAt: z.string().refine((t) => !Number.isNaN(Date.parse(t)), 'a date'),
  rule: z.string(),
  by: z.string().optional(),
  /**
   * The quarantined file's stat just after the move, when the ledger
   * vouched for its content before it: restore trusts the content again
   * only while the file still has this stat (untouched in the quarantine).
   */
  stat: statKeySchema.optional(),
});
export type RetiredRecord = z.infer<typeof retiredRecordSchema>;
