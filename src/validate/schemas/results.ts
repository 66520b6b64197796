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

/** A figure worse than the baseline's by more than the tolerance. */
export const regressionSchema = z.object({
  check: z.string(),
  size: z.number(),
  kind: z.enum(['latency', 'bandwidth']),
  baseline: z.number(),
  // Null: a size the baseline measured and this run did not.
  value: z.number().nullable(),
  worseBy: z.number().nullable(),
});

/**
 * The regression gate's verdict on a run, part of the run: `refused` when a
 * figure is worse than the baseline's by more than `tolerance` (the run is
 * then not passed), `off` when the run was told not to gate (--no-gate).
 * Absent when there was nothing to compare with.
 */
export const gateSchema = z.object({
  verdict: z.enum(['passed', 'refused', 'off']),
  tolerance: z.number(),
  baseline: imageField.optional(),
  source: z.string().optional(),
  regressions: z.array(regressionSchema),
});

export const testRunSchema = z.object({
  image: imageField,
  stem: nameField('stem'),
  dockerhash: nameField('dockerhash'),
  recipe: z.string(),
  /** The image's recipe parameters (from its labels), so reports can say what differs between versions. */
  params: z.record(z.string(), z.string()).optional(),
  runner: z.enum(['local', 'slurm']),
  host: z.string(),
  jobId: z.string().optional(),
  jobState: z.string().optional(),
  started: z.string(),
  finished: z.string(),
  /** Every check passed and the gate did not refuse. */
  passed: z.boolean(),
  checks: z.array(checkResultSchema),
  gate: gateSchema.optional(),
});

export type TestRun = z.infer<typeof testRunSchema>;
export type RunGate = z.infer<typeof gateSchema>;

export const resultsFileSchema = z.object({
  image: imageField,
  runs: z.array(testRunSchema),
});

export type TestVerdict = 'passed' | 'failed' | 'refused';

/** What a run says about its image: a failed check, else the gate's refusal, else passed. */
export function runVerdict(run: z.infer<typeof testRunSchema>): TestVerdict {
  if (!run.checks.every((c) => c.passed)) return 'failed';
  if (run.gate?.verdict === 'refused') return 'refused';
  return run.passed ? 'passed' : 'failed';
}

/**
 * The run that speaks for an image now: the last one to finish. A later
 * run supersedes an earlier one, whichever way it went, so a refusal is
 * never hidden behind an older pass.
 */
export function latestRun<T extends { finished: string }>(runs: readonly T[] | undefined): T | undefined {
  let last: T | undefined;
  for (const r of runs ?? []) if (!last || r.finished >= last.finished) last = r;
  return last;
}

/** The runs among `raw` (a ledger's `tests`) that read as test runs; others are left out. */
export function testRuns(raw: readonly unknown[] | undefined): Array<z.infer<typeof testRunSchema>> {
  return (raw ?? []).flatMap((t) => {
    const r = testRunSchema.safeParse(t);
    return r.success ? [r.data] : [];
  });
}

/**
 * The runs of several records of one image (the ledger's, a results
 * file's), each once, in the order first seen: a run is its start and its
 * runner. What a stopped command wrote to one record and not yet to the
 * other is taken in by the next that writes either.
 */
export function mergeRuns<T extends { started: string; runner: string }>(
  ...lists: Array<readonly T[] | undefined>
): T[] {
  return [...new Map(lists.flatMap((l) => l ?? []).map((t) => [JSON.stringify([t.started, t.runner]), t])).values()];
}
