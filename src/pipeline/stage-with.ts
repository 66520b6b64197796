/**
 * Each stage's `with:` block in a pipeline file, as a zod schema: checked
 * when the pipeline is loaded (definition.ts), so a bad value fails before
 * any stage runs, in one line naming the stage and the field. The values
 * stay text (pipeline files are read with YAML's failsafe schema); the
 * fields take what the stage's command-line flags take, through the same
 * rules (`isTolerance`, `parseTarget`'s targets, local|slurm).
 */
import { z } from 'zod';
import { isTolerance } from '../checks/gate';
import { PROMOTE_TARGETS } from '../tree/promote';

export const RUNNERS = ['local', 'slurm'] as const;

const yesNo = z.enum(['true', 'false']);
/** The gate's tolerance as text (a flag or a pipeline file's value). */
export const toleranceText = z
  .string()
  .refine((t) => t.trim() !== '' && isTolerance(Number(t)), { message: 'a fraction such as 0.1' });
/** A stage that takes no `with:` options. */
const none = z.strictObject({});

export const STAGE_WITH = {
  render: none,
  build: none,
  archive: none,
  convert: none,
  test: z.strictObject({
    runner: z.enum(RUNNERS).optional(),
    tolerance: toleranceText.optional(),
  }),
  stage: none,
  promote: z.strictObject({ to: z.enum(PROMOTE_TARGETS).optional() }),
  retire: z.strictObject({
    policy: z.string().min(1).optional(),
    easyconfigs: z.string().min(1).optional(),
    apply: yesNo.optional(),
    'include-referenced': yesNo.optional(),
  }),
} as const;

export type TestWith = z.output<typeof STAGE_WITH.test>;
export type PromoteWith = z.output<typeof STAGE_WITH.promote>;
export type RetireWith = z.output<typeof STAGE_WITH.retire>;
