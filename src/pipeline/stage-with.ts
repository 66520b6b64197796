/**
 * Each stage's `with:` block in a pipeline file, as a zod schema: checked
 * when the pipeline is loaded (definition.ts), so a bad value fails before
 * any stage runs, in one line naming the stage and the field. The file
 * gives text (pipeline files are read with YAML's failsafe schema); each
 * schema gives the stage typed values (a number, booleans, enums), and
 * the stage's command-line flags are read through the same schemas
 * (cli/stage-flags.ts), so flag and file agree.
 */
import { z } from 'zod';
import { isTolerance } from '../checks/gate';
import { PROMOTE_TARGETS } from '../tree/promote';

export const RUNNERS = ['local', 'slurm'] as const;

const yesNo = z.enum(['true', 'false']).transform((v) => v === 'true');
/** The gate's tolerance read from text (a flag or a pipeline file's value): a number. */
export const toleranceText = z
  .string()
  .refine((t) => t.trim() !== '' && isTolerance(Number(t)), { message: 'a fraction such as 0.1' })
  .transform(Number);
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
