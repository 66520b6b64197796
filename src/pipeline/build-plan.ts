/**
 * Which engine builds which variant, and in which order, so that a step
 * the matrix shares runs once. The variants' steps (recipe/steps.ts, keyed
 * through stages) form a tree of common prefixes; an engine's layer cache
 * holds the steps it built, so a variant goes where most of its steps are,
 * and waits for the variant that builds them. A variant moves to another engine only
 * when that shortens the run by more than twice the steps it would repeat
 * there (per variant, the plan minimises the longest engine's work plus
 * twice the work added; steps count as heavy when RUN, COPY or ADD).
 * What an engine's cache holds before the run counts as built there.
 * Moving a prefix between engines (docker save/load) is not planned: an
 * engine builds what it needs. Pure: the build stage follows the plan.
 */
import type { BuildStep } from '../recipe/steps';

export interface PlannedVariant {
  /** Position in the run's variants. */
  index: number;
  engine: string;
  /** Steps of its definition. */
  steps: number;
  /** Steps its engine holds when its build starts: from an earlier variant's build, or its cache before the run. */
  shared: number;
  /** Of those, the steps the engine's cache held before the run (cached). */
  cached: number;
  /** The earlier variant on the same engine whose build holds its longest prefix: build after it. */
  after?: number;
}

export interface EnginePlan {
  /** Its address ('' for the default engine). */
  engine: string;
  variants: number[];
  /** Steps it runs, and of those the heavy ones (RUN, COPY, ADD). */
  run: number;
  heavy: number;
  /** Steps of the matrix its cache held before the run, which it does not run. */
  cached: number;
}

export interface BuildPlan {
  variants: PlannedVariant[];
  engines: EnginePlan[];
  /** Steps of every definition added up. */
  steps: number;
  /** Distinct steps of the matrix (nodes of the prefix tree), all and heavy. */
  distinct: number;
  distinctHeavy: number;
  /** Steps the plan runs over every engine, all and heavy (= distinct when nothing repeats). */
  executed: number;
  executedHeavy: number;
}

/** Steps whose run costs time: the ones that make a layer with content. */
export function isHeavy(step: Pick<BuildStep, 'instruction'>): boolean {
  return step.instruction === 'RUN' || step.instruction === 'COPY' || step.instruction === 'ADD';
}

/** A step an engine's cache held before the run: built by no variant of it. */
const CACHED = -1;

/**
 * The plan for these variants' steps over these engines ('' alone: the
 * default one). A variant without steps (its render failed) is left out.
 * `cached` gives, by engine address, the step keys its layer cache holds
 * before the run (build-order.ts reads them from the images there): a
 * variant goes where they are, and does not run them.
 */
export function planBuilds(
  variants: ReadonlyArray<readonly BuildStep[] | undefined>,
  engines: readonly string[],
  cached: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
): BuildPlan {
  const addresses = engines.length ? [...new Set(engines)] : [''];
  const weight = (s: BuildStep) => (isHeavy(s) ? 1 : 0);
  // Per engine: the keys it will hold, and which variant first builds each (CACHED: none, it had them).
  const held = addresses.map((a) => new Map<string, number>([...(cached.get(a) ?? [])].map((k) => [k, CACHED])));
  const load = addresses.map(() => 0);
  const planned: PlannedVariant[] = [];
  // In the run's order, so that the variant a build waits for (`after`) always comes before it.
  const order = variants
    .map((steps, index) => ({ steps, index }))
    .filter((v): v is { steps: readonly BuildStep[]; index: number } => v.steps !== undefined);
  for (const { steps, index } of order) {
    let best = -1;
    let bestCost = Infinity;
    addresses.forEach((_, e) => {
      const fresh = steps.filter((s) => !held[e].has(s.key)).reduce((n, s) => n + weight(s), 0);
      const span = Math.max(...load.map((l, i) => (i === e ? l + fresh : l)));
      // The run's length plus twice the work it adds: a step repeated on another engine must shorten the
      // run by twice its own time (engines often share a host's CPUs, and the repeat is paid again at every rebuild).
      const cost = span + 2 * fresh;
      if (cost < bestCost) {
        best = e;
        bestCost = cost;
      }
    });
    const cache = held[best];
    // Keys follow stages, so what the cache holds need not be one prefix (an OSU stage of another
    // version, then the same Python steps): every held step is shared, and the build waits for the
    // latest variant that builds one of them.
    const holders = steps.map((s) => cache.get(s.key)).filter((i): i is number => i !== undefined);
    const builders = holders.filter((i) => i !== CACHED);
    const shared = holders.length;
    const after = builders.length ? Math.max(...builders) : undefined;
    load[best] += steps.filter((s) => !cache.has(s.key)).reduce((n, s) => n + weight(s), 0);
    for (const s of steps) if (!cache.has(s.key)) cache.set(s.key, index);
    planned.push({
      index,
      engine: addresses[best],
      steps: steps.length,
      shared,
      cached: holders.length - builders.length,
      after,
    });
  }
  const all = new Map<string, BuildStep>();
  for (const steps of variants) for (const s of steps ?? []) all.set(s.key, s);
  const heavyKeys = (keys: Iterable<string>) => [...keys].filter((k) => isHeavy(all.get(k)!)).length;
  // What each engine runs: the keys a variant of the run builds there (not what it had, used or not).
  const runs = held.map((h) => [...h].filter(([, by]) => by !== CACHED).map(([k]) => k));
  return {
    variants: planned,
    engines: addresses.map((engine, e) => ({
      engine,
      variants: planned.filter((v) => v.engine === engine).map((v) => v.index),
      run: runs[e].length,
      heavy: heavyKeys(runs[e]),
      cached: [...held[e]].filter(([k, by]) => by === CACHED && all.has(k)).length,
    })),
    steps: variants.reduce((n, s) => n + (s?.length ?? 0), 0),
    distinct: all.size,
    distinctHeavy: heavyKeys(all.keys()),
    executed: runs.reduce((n, r) => n + r.length, 0),
    executedHeavy: runs.reduce((n, r) => n + heavyKeys(r), 0),
  };
}
