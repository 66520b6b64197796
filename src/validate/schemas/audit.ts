/** One line of the append-only audit log (`.sifkit/audit.log`). */
import { z } from 'zod';

export const auditRecordSchema = z.looseObject({
  time: z.string(),
  user: z.string(),
  host: z.string(),
  pid: z.number().int(),
  command: z.string(),
  action: z.string(),
  files: z.array(z.looseObject({ path: z.string(), sha256: z.string().optional(), op: z.string().optional() })),
  outcome: z.enum(['ok', 'failed', 'refused', 'interrupted']),
  error: z.string().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
});
export type AuditRecord = z.infer<typeof auditRecordSchema>;
