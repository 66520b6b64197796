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
 * - slurm, the barrier of before: every build and its archive first (the
 *   job array was submitted once the last archive was saved), then
 *   conversion + test per variant, K variants at a time (one node each),
 *   then staging and promotion. The pipeline sifkit runs now is
 *   projectPlanned, below.
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

/** A variant's build as the build plan lays it out (build-plan.ts PlannedVariant). */
export interface PlannedBuild {
  /** Position in the run's variants. */
  index: number;
  engine: string;
  /** RUN/COPY/ADD steps it runs. */
  heavy: number;
  /** The earlier variant on its engine whose build it waits for. */
  after?: number;
  /** Heavy steps' worth of work a save/load move costs it before its build (build-plan.ts MOVE_COST), if it moves. */
  move?: number;
}

export interface PipelineProjection {
  /** Seconds from the first build to the last promotion. */
  wall: number;
  /** Each engine's build line: its variants, the heavy steps it runs, the seconds it builds. */
  engines: Array<{ engine: string; variants: number; heavy: number; busy: number }>;
  /** When the last archive is saved: where the barrier of before submitted its first job. */
  lastArchive: number;
}

/**
 * `--on slurm` as the executor runs it (slurm-executor.ts over
 * stages.ts), from a build plan: every variant starts at once; one that
 * builds after another (`after`) waits for that build to end, then for a
 * build slot on its engine (--build-jobs 1: one per engine, first come
 * first served, engines side by side); a build takes `stepSeconds` per
 * heavy step it runs (and per step's worth of a move). Its archive is
 * saved right after, outside any slot (the next build on that engine
 * starts meanwhile); the conversion job is submitted once the archive is
 * there and the test job with it (afterok), each on a node of K once
 * queued, the test queueing again when its conversion ends. Stage +
 * promote run one at a time (the tree's lock) as tests end. Pure.
 */
export function projectPlanned(
  t: StageTimes,
  builds: readonly PlannedBuild[],
  stepSeconds: number,
  k: number,
): PipelineProjection {
  const end = new Map<number, number>();
  const free = new Map<string, number>();
  const ready: number[] = [];
  const left = [...builds];
  while (left.length) {
    // The slot goes to the variant that asked first (its wait over), by run order on a tie.
    const asking = left
      .filter((b) => b.after === undefined || end.has(b.after))
      .map((b) => ({ b, at: b.after === undefined ? 0 : end.get(b.after)! }))
      .sort((x, y) => x.at - y.at || x.b.index - y.b.index);
    if (!asking.length) throw new Error('a planned build waits for a variant that is not in the plan');
    const { b, at } = asking[0];
    left.splice(left.indexOf(b), 1);
    const start = Math.max(at, free.get(b.engine) ?? 0);
    const done = start + (b.heavy + (b.move ?? 0)) * stepSeconds;
    free.set(b.engine, done);
    end.set(b.index, done);
    ready.push(done + t.archive);
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
  const engines = [...new Set(builds.map((b) => b.engine))].map((engine) => {
    const mine = builds.filter((b) => b.engine === engine);
    const heavy = mine.reduce((n, b) => n + b.heavy + (b.move ?? 0), 0);
    return { engine, variants: mine.length, heavy, busy: heavy * stepSeconds };
  });
  return { wall: lock, engines, lastArchive: ready.at(-1) ?? 0 };
}
