/**
 * Wall time of a release of N variants, from the time each stage takes
 * for one variant, on this host (local executor) or with conversion and
 * tests as Slurm jobs over K nodes. Pure: the figures come from the
 * measurement in slurm.bench.ts (or from a site's own).
 *
 * The model follows what sifkit does, not an ideal:
 * - builds run one at a time per engine (--build-jobs 1), E engines;
 * - local: conversions one at a time on this host (--convert-jobs 1),
 *   overlapping the next build; tests after their conversion; staging
 *   and promotion one at a time (the tree's lock);
 * - slurm: every build and its archive first (the job array is submitted
 *   once the last archive is saved), then conversion + test per variant,
 *   K variants at a time (one node each), then staging and promotion.
 */
export interface StageTimes {
  /** Seconds per variant. */
  build: number;
  archive: number;
  convert: number;
  test: number;
  /** Stage + promote, under the tree's lock. */
  publish: number;
  /** Seconds from sbatch to a job starting on an idle cluster. */
  queue: number;
}

export interface Projection {
  local: number;
  slurm: number;
  /** In the Slurm run, the part spent building and saving archives. */
  buildShare: number;
}

export function project(t: StageTimes, n: number, k: number, engines = 1): Projection {
  const perEngine = Math.ceil(n / engines);
  const builds = perEngine * t.build;
  // Local: the build line and the conversion line run side by side; the slower bounds.
  const convertLine = t.build + n * (t.archive + t.convert);
  const local = Math.max(builds + t.archive + t.convert, convertLine) + t.test + n * t.publish;
  const prepare = perEngine * (t.build + t.archive);
  const waves = Math.ceil(n / k);
  const slurm = prepare + t.queue + waves * (t.convert + t.test + t.queue) + n * t.publish;
  return { local, slurm, buildShare: prepare / slurm };
}

/** The variant count from which, on k nodes, the builds take longer than all the jobs. */
export function buildBoundFrom(t: StageTimes, k: number, engines = 1, max = 1000): number | undefined {
  for (let n = 1; n <= max; n++) {
    const prepare = Math.ceil(n / engines) * (t.build + t.archive);
    const jobs = Math.ceil(n / k) * (t.convert + t.test + t.queue);
    if (prepare > jobs) return n;
  }
  return undefined;
}
