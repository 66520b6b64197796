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
 * A variant may also take steps another engine holds in an image before
 * the run: that image is moved (docker save there, docker load here) and
 * given to the build as its cache, when that costs less than running the
 * steps. A move counts as MOVE_COST heavy steps of work on the engine it
 * goes to, so a prefix of more heavy steps than that moves, and a shorter
 * one is built again. Pure: the build stage follows the plan.
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
  /** An image another engine holds, moved to this one (save/load) before the build and given it as cache. */
  move?: PrefixMove;
}

/** An image another engine held before the run, whose steps a variant takes. */
export interface PrefixMove {
  /** The engine that holds it. */
  from: string;
  /** Its ID, and the reference it is saved by (its own tag, so it arrives tagged; else the ID). */
  image: string;
  ref: string;
  /** The variant's steps it brings (not held on the variant's engine), and of them the heavy ones. */
  steps: number;
  heavy: number;
}

/** An image an engine holds before the run: the step keys of its own history (recipe/steps.ts imageLineage). */
export interface HeldImage {
  id: string;
  ref: string;
  lineage: ReadonlySet<string>;
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
  /** Steps it takes from images moved to it from other engines, which it does not run either. */
  moved: number;
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
 * What moving an image costs, in heavy steps of work on the engine it goes
 * to: a save and a load stream the image's layers once each, about what
 * one step that writes them costs, and far less than the steps that made
 * them (a compiler run, a package install).
 */
export const MOVE_COST = 1;

/** The move that brings most of `fresh` (steps the engine lacks) from an image another engine holds. */
function bestMove(
  fresh: readonly BuildStep[],
  here: string,
  images: ReadonlyMap<string, ReadonlyArray<HeldImage>>,
  weight: (s: BuildStep) => number,
): { move: PrefixMove; keys: ReadonlySet<string> } | undefined {
  let best: { move: PrefixMove; keys: ReadonlySet<string> } | undefined;
  for (const [from, held] of images) {
    if (from === here) continue;
    for (const img of held) {
      const brought = fresh.filter((s) => img.lineage.has(s.key));
      const heavy = brought.reduce((n, s) => n + weight(s), 0);
      if (heavy > MOVE_COST && heavy > (best?.move.heavy ?? 0))
        best = {
          move: { from, image: img.id, ref: img.ref, steps: brought.length, heavy },
          keys: img.lineage,
        };
    }
  }
  return best;
}

/**
 * The plan for these variants' steps over these engines ('' alone: the
 * default one). A variant without steps (its render failed) is left out.
 * `cached` gives, by engine address, the step keys its layer cache holds
 * before the run (build-order.ts reads them from the images there): a
 * variant goes where they are, and does not run them. `images` gives, by
 * engine address, the images there before the run that could be moved.
 */
export function planBuilds(
  variants: ReadonlyArray<readonly BuildStep[] | undefined>,
  engines: readonly string[],
  cached: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
  images: ReadonlyMap<string, ReadonlyArray<HeldImage>> = new Map(),
): BuildPlan {
  const addresses = engines.length ? [...new Set(engines)] : [''];
  const weight = (s: BuildStep) => (isHeavy(s) ? 1 : 0);
  // Per engine: the keys it will hold, and which variant first builds each (CACHED: none, it had them).
  const held = addresses.map((a) => new Map<string, number>([...(cached.get(a) ?? [])].map((k) => [k, CACHED])));
  const load = addresses.map(() => 0);
  // Per engine: the keys it holds from images moved to it (not run there).
  const moved = addresses.map(() => new Set<string>());
  // Only engines of the run send or receive.
  const movable = new Map([...images].filter(([a]) => addresses.includes(a)));
  const planned: PlannedVariant[] = [];
  // In the run's order, so that the variant a build waits for (`after`) always comes before it.
  const order = variants
    .map((steps, index) => ({ steps, index }))
    .filter((v): v is { steps: readonly BuildStep[]; index: number } => v.steps !== undefined);
  for (const { steps, index } of order) {
    let best = -1;
    let bestCost = Infinity;
    let bestMoveFound: ReturnType<typeof bestMove>;
    addresses.forEach((address, e) => {
      const missing = steps.filter((s) => !held[e].has(s.key));
      const m = bestMove(missing, address, movable, weight);
      const fresh = missing.reduce((n, s) => n + weight(s), 0) - (m ? m.move.heavy - MOVE_COST : 0);
      const span = Math.max(...load.map((l, i) => (i === e ? l + fresh : l)));
      // The run's length plus twice the work it adds: a step repeated on another engine must shorten the
      // run by twice its own time (engines often share a host's CPUs, and the repeat is paid again at every rebuild).
      const cost = span + 2 * fresh;
      if (cost < bestCost) {
        best = e;
        bestCost = cost;
        bestMoveFound = m;
      }
    });
    const cache = held[best];
    // The moved image's steps are on this engine once this variant's build has loaded it: later ones wait for it.
    if (bestMoveFound) {
      load[best] += MOVE_COST;
      for (const k of bestMoveFound.keys)
        if (!cache.has(k)) {
          cache.set(k, index);
          moved[best].add(k);
        }
    }
    // Keys follow stages, so what the cache holds need not be one prefix (an OSU stage of another
    // version, then the same Python steps): every held step is shared, and the build waits for the
    // latest variant that builds one of them.
    const holders = steps.map((s) => cache.get(s.key)).filter((i): i is number => i !== undefined);
    const builders = holders.filter((i) => i !== CACHED && i !== index);
    const shared = holders.length;
    const after = builders.length ? Math.max(...builders) : undefined;
    load[best] += steps.filter((s) => !cache.has(s.key)).reduce((n, s) => n + weight(s), 0);
    for (const s of steps) if (!cache.has(s.key)) cache.set(s.key, index);
    planned.push({
      index,
      engine: addresses[best],
      steps: steps.length,
      shared,
      cached: holders.filter((i) => i === CACHED).length,
      after,
      ...(bestMoveFound && { move: bestMoveFound.move }),
    });
  }
  const all = new Map<string, BuildStep>();
  for (const steps of variants) for (const s of steps ?? []) all.set(s.key, s);
  const heavyKeys = (keys: Iterable<string>) => [...keys].filter((k) => isHeavy(all.get(k)!)).length;
  // What each engine runs: the keys a variant of the run builds there (not what it had, used or not).
  const runs = held.map((h, e) => [...h].filter(([k, by]) => by !== CACHED && !moved[e].has(k)).map(([k]) => k));
  return {
    variants: planned,
    engines: addresses.map((engine, e) => ({
      engine,
      variants: planned.filter((v) => v.engine === engine).map((v) => v.index),
      run: runs[e].length,
      heavy: heavyKeys(runs[e]),
      cached: [...held[e]].filter(([k, by]) => by === CACHED && all.has(k)).length,
      moved: [...moved[e]].filter((k) => all.has(k)).length,
    })),
    steps: variants.reduce((n, s) => n + (s?.length ?? 0), 0),
    distinct: all.size,
    distinctHeavy: heavyKeys(all.keys()),
    executed: runs.reduce((n, r) => n + r.length, 0),
    executedHeavy: runs.reduce((n, r) => n + heavyKeys(r), 0),
  };
}
