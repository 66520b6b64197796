/**
 * A test results file (`<sif name>.json` in the results directory): the
 * runs of one image. Fields sifkit does not know are dropped on reading.
 */
import { z } from 'zod';
import { nameField } from '../schema';

export const osuResultSchema = z.object({
  benchmark: z.string().optional(),
  kind: z.enum(['latency', 'bandwidth', 'unknown']),
  /** Read from the benchmark's output, shown in the report and the pull request: a unit, nothing more. */
  unit: z.string().regex(/^[A-Za-z%/.µ]{0,16}$/, 'a unit such as us or MB/s'),
  points: z.array(z.object({ size: z.number(), value: z.number() })),
});

/**
 * The image a run is of: a plain file name. Not held to the `-dockerhash-`
 * shape, as a baseline may come from anywhere; never joined into a path
 * when read (results paths come from the image being tested).
 */
const imageField = nameField('file name');

export const checkResultSchema = z.object({
  name: z.string(),
  outcome: z.enum(['passed', 'failed', 'timeout', 'cancelled', 'node-failure', 'not-run']),
  passed: z.boolean(),
  exitCode: z.number().int().nullable(),
  durationMs: z.number().nonnegative(),
  reason: z.string().optional(),
  tail: z.string(),
  figures: osuResultSchema.optional(),
});

export const testRunSchema = z.object({
  image: imageField,
  stem: nameField('stem'),
  dockerhash: nameField('dockerhash'),
  recipe: z.string(),
  runner: z.enum(['local', 'slurm']),
  host: z.string(),
  jobId: z.string().optional(),
  jobState: z.string().optional(),
  started: z.string(),
  finished: z.string(),
  passed: z.boolean(),
  checks: z.array(checkResultSchema),
});

export type TestRun = z.infer<typeof testRunSchema>;

export const resultsFileSchema = z.object({
  image: imageField,
  runs: z.array(testRunSchema),
});
