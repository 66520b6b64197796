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

/**
 * `--on slurm` as a pipeline (slurm-executor.ts): a variant's conversion
 * and test jobs are submitted as soon as its archive is saved, so jobs run
 * while later variants build. Builds: one at a time per engine, variants
 * dealt in turn; `buildShare` is the part of a variant's build its engine
 * still runs once shared steps come from the layer cache (1: nothing
 * shared; the build plan's executed / total heavy steps). Jobs take a node
 * each (K nodes); stage + promote run one at a time (the tree's lock) as
 * tests end.
 */
export function projectPipelined(t: StageTimes, n: number, k: number, engines = 1, buildShare = 1): number {
  const ready: number[] = [];
  for (let i = 0; i < n; i++) {
    const j = Math.floor(i / engines);
    // The engine's first variant builds all of it; the next ones their unshared part.
    ready.push(t.build + j * t.build * buildShare + (j + 1) * t.archive);
  }
  ready.sort((a, b) => a - b);
  const nodes = Array.from({ length: Math.max(1, k) }, () => 0);
  const ends: number[] = [];
  for (const r of ready) {
    const node = nodes.indexOf(Math.min(...nodes));
    const start = Math.max(r + t.queue, nodes[node]);
    nodes[node] = start + t.convert + t.queue + t.test;
    ends.push(nodes[node]);
  }
  let lock = 0;
  for (const e of ends.sort((a, b) => a - b)) lock = Math.max(lock, e) + t.publish;
  return lock;
}
