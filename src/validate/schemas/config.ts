/**
 * The YAML files that configure sifkit rather than describe an image: the
 * test profile (a recipe's `testing:` section), pipeline files and the
 * retention policy. Defaults are filled where the readers apply them.
 */
import { z } from 'zod';

const text = z.string();

/** A recipe's `testing:` section; every field optional, LUMI's values are the defaults. */
export const testingSchema = z.strictObject({
  local: z.strictObject({ launcher: text.optional() }).optional(),
  slurm: z
    .strictObject({
      partition: text.optional(),
      sbatch: z.array(text).optional(),
      srun: text.optional(),
      container: text.optional(),
      launcher: text.optional(),
      cleanup: text.optional(),
    })
    .optional(),
});

const stageRef = z.union([
  text.transform((stage) => ({ stage, with: {} as Record<string, string> })),
  z
    .strictObject({ stage: text, with: z.record(z.string(), text).optional() })
    .transform((o) => ({ stage: o.stage, with: o.with ?? {} })),
]);

/** A pipeline file (failsafe YAML: scalars are strings). */
export const pipelineSchema = z.strictObject({
  name: text,
  description: text.optional(),
  stages: z.array(stageRef).min(1),
  executor: z.enum(['local', 'slurm']).optional(),
  // Per-stage Slurm resources, checked by the executor's own parser (pipeline/slurm-plan).
  slurm: z.unknown().optional(),
});

const count = z.number().int().nonnegative();
const GROUPINGS = ['stem', 'rocm-minor', 'app'] as const;
const dirPolicy = z.strictObject({
  keep_newest: count.optional(),
  series: z.array(z.enum(GROUPINGS)).min(1).optional(),
  keep_younger_than_days: count.optional(),
});

/** The retention policy (core YAML: numbers are numbers). */
export const policySchema = z.strictObject({
  directories: z
    .strictObject({ 'tested-containers': dirPolicy.optional(), 'easybuild-sif-images': dirPolicy.optional() })
    .optional(),
  pinned: z.array(text).optional(),
  broken: z.array(z.strictObject({ name: text.min(1), reason: text.regex(/\S/, 'a reason') })).optional(),
  quarantine_days: count.optional(),
  backup_command: text.includes('{path}', { message: 'a command with {path} in it' }).optional(),
  easyconfigs: text.optional(),
});
