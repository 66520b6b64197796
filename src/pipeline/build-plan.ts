/**
 * Which engine builds which variant, and in which order, so that a step
 * the matrix shares runs once. The variants' steps (recipe/steps.ts, keyed
 * through stages) form a tree of common prefixes; an engine's layer cache
 * holds the steps it built, so a variant goes where most of its steps are,
 * and waits for the variant that builds them. Work goes to another engine
 * only when that shortens the run by more than twice the steps it repeats
 * there: the plan minimises the longest engine's work plus twice the work
 * of all (steps count as heavy when RUN, COPY or ADD), placing variants
 * one at a time and then moving whole families (planBuilds).
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
  /** RUN/COPY/ADD steps its build runs: its own that its engine does not hold when it builds (a move's not counted). */
  heavy: number;
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

/** What the run's builds are served, as the plan keyed the steps after `ARG SERVER_PORT`/`SERVED_DIGEST`. */
export interface PlanServed {
  /** The served digest the builds pass (SERVED_DIGEST) and the port it derives (SERVER_PORT), when known. */
  digest?: string;
  port?: number;
  /** What the plan assumed where it could not know the digest; said with the plan. */
  assumed?: string;
}

export interface BuildPlan {
  variants: PlannedVariant[];
  /** Set by the run's planner (build-order.ts planRun); a plan of bare steps has none. */
  served?: PlanServed;
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

type Variant = { steps: readonly BuildStep[]; index: number };
type Found = ReturnType<typeof bestMove>;

/** Where the plan stands after placing some variants: what each engine holds and has to do. */
interface Layout {
  /** Per engine: the keys it will hold, and which variant first builds each (CACHED: none, it had them). */
  held: Map<string, number>[];
  /** Per engine: the heavy steps (and moves) it runs. */
  load: number[];
  /** Per engine: the keys it holds from images moved to it (not run there). */
  moved: Set<string>[];
  planned: PlannedVariant[];
}

const weight = (s: BuildStep) => (isHeavy(s) ? 1 : 0);

function emptyLayout(addresses: readonly string[], cached: ReadonlyMap<string, ReadonlySet<string>>): Layout {
  return {
    held: addresses.map((a) => new Map<string, number>([...(cached.get(a) ?? [])].map((k) => [k, CACHED]))),
    load: addresses.map(() => 0),
    moved: addresses.map(() => new Set<string>()),
    planned: [],
  };
}

/** What placing a variant on engine e adds: the move it takes there, and the heavy work it adds. */
function added(
  l: Layout,
  v: Variant,
  e: number,
  address: string,
  movable: ReadonlyMap<string, ReadonlyArray<HeldImage>>,
): { fresh: number; found: Found } {
  const missing = v.steps.filter((s) => !l.held[e].has(s.key));
  const found = bestMove(missing, address, movable, weight);
  const fresh = missing.reduce((n, s) => n + weight(s), 0) - (found ? found.move.heavy - MOVE_COST : 0);
  return { fresh, found };
}

/** Puts a variant on engine e of the layout (the move found for it there, if any). */
function place(l: Layout, v: Variant, e: number, address: string, found: Found): void {
  const cache = l.held[e];
  // The moved image's steps are on this engine once this variant's build has loaded it: later ones wait for it.
  if (found) {
    l.load[e] += MOVE_COST;
    for (const k of found.keys)
      if (!cache.has(k)) {
        cache.set(k, v.index);
        l.moved[e].add(k);
      }
  }
  // Keys follow stages, so what the cache holds need not be one prefix (an OSU stage of another
  // version, then the same Python steps): every held step is shared, and the build waits for the
  // latest variant that builds one of them.
  const holders = v.steps.map((s) => cache.get(s.key)).filter((i): i is number => i !== undefined);
  const builders = holders.filter((i) => i !== CACHED && i !== v.index);
  const after = builders.length ? Math.max(...builders) : undefined;
  const heavy = v.steps.filter((s) => !cache.has(s.key)).reduce((n, s) => n + weight(s), 0);
  l.load[e] += heavy;
  for (const s of v.steps) if (!cache.has(s.key)) cache.set(s.key, v.index);
  l.planned.push({
    index: v.index,
    engine: address,
    steps: v.steps.length,
    shared: holders.length,
    cached: holders.filter((i) => i === CACHED).length,
    heavy,
    after,
    ...(found && { move: found.move }),
  });
}

/**
 * What the plan minimises: the longest engine's work plus twice the work
 * of all of them. A step repeated on another engine must shorten the run
 * by twice its own time (engines often share a host's CPUs, and the
 * repeat is paid again at every rebuild).
 */
function cost(load: readonly number[]): number {
  return Math.max(...load) + 2 * load.reduce((a, b) => a + b, 0);
}

/**
 * The plan for these variants' steps over these engines ('' alone: the
 * default one). A variant without steps (its render failed) is left out.
 * `cached` gives, by engine address, the step keys its layer cache holds
 * before the run (build-order.ts reads them from the images there): a
 * variant goes where they are, and does not run them. `images` gives, by
 * engine address, the images there before the run that could be moved.
 *
 * First each variant, in the run's order, goes where it costs least then
 * (cost, above). Taken one at a time, a variant never leaves its family:
 * the first of a family that shares nothing with the rest (another OS or
 * ROCm) repeats little on a busy engine and all of its base on an idle
 * one, so families pile up on the first engines while the others idle.
 * Then whole groups move: the variants of one engine that share a heavy
 * step, moved together to another engine, wherever that lowers the cost;
 * until no such move does. The same is done from the families largest
 * first (as one schedules the longest jobs first), and the cheaper of the
 * two plans is kept; either way the build order is the run's.
 */
export function planBuilds(
  variants: ReadonlyArray<readonly BuildStep[] | undefined>,
  engines: readonly string[],
  cached: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
  images: ReadonlyMap<string, ReadonlyArray<HeldImage>> = new Map(),
): BuildPlan {
  const addresses = engines.length ? [...new Set(engines)] : [''];
  // Only engines of the run send or receive.
  const movable = new Map([...images].filter(([a]) => addresses.includes(a)));
  // In the run's order, so that the variant a build waits for (`after`) always comes before it.
  const order = variants.map((steps, index) => ({ steps, index })).filter((v): v is Variant => v.steps !== undefined);
  // The same placements laid out again from scratch, in the run's order: each variant takes the best move where it now goes.
  const layOut = (on: readonly number[]): Layout => {
    const l = emptyLayout(addresses, cached);
    order.forEach((v, i) => place(l, v, on[i], addresses[on[i]], added(l, v, on[i], addresses[on[i]], movable).found));
    return l;
  };
  // Each variant where it costs least then, taken in this order (positions in `order`).
  const greedy = (sequence: readonly number[]): number[] => {
    const l = emptyLayout(addresses, cached);
    const on: number[] = [];
    for (const i of sequence) {
      let best = 0;
      let bestCost = Infinity;
      let bestFound: Found;
      addresses.forEach((address, e) => {
        const { fresh, found } = added(l, order[i], e, address, movable);
        const c = cost(l.load.map((x, k) => (k === e ? x + fresh : x)));
        if (c < bestCost) {
          best = e;
          bestCost = c;
          bestFound = found;
        }
      });
      place(l, order[i], best, addresses[best], bestFound);
      on[i] = best;
    }
    return on;
  };
  // Whole groups moved while that lowers the cost: the variants of one engine that share a heavy step.
  const groupKeys = [...new Set(order.flatMap((v) => v.steps.filter(isHeavy).map((s) => s.key)))];
  const improve = (start: number[]): { on: number[]; layout: Layout } => {
    let on = start;
    let layout = layOut(on);
    for (let better = addresses.length > 1; better;) {
      better = false;
      for (const key of groupKeys)
        for (let from = 0; from < addresses.length; from++) {
          const group = order.map((v, i) => on[i] === from && v.steps.some((s) => s.key === key));
          if (!group.some(Boolean)) continue;
          for (let to = 0; to < addresses.length; to++) {
            if (to === from) continue;
            const trial = on.map((e, i) => (group[i] ? to : e));
            const l = layOut(trial);
            if (cost(l.load) < cost(layout.load)) {
              [on, layout, better] = [trial, l, true];
              break;
            }
          }
        }
    }
    return { on, layout };
  };
  const runOrder = order.map((_, i) => i);
  let plan = improve(greedy(runOrder)).layout;
  if (addresses.length > 1) {
    // Also from the families largest first (variants that branch off the matrix at the same step,
    // by the work only they need), as one schedules the longest jobs first; the cheaper plan wins.
    const users = new Map<string, number>();
    for (const v of order) for (const s of v.steps) users.set(s.key, (users.get(s.key) ?? 0) + 1);
    const branch = order.map((v) => v.steps.find((s) => isHeavy(s) && users.get(s.key)! < order.length)?.key ?? '');
    const work = new Map<string, Set<string>>();
    order.forEach((v, i) => {
      const w = work.get(branch[i]) ?? new Set<string>();
      for (const s of v.steps) if (isHeavy(s)) w.add(s.key);
      work.set(branch[i], w);
    });
    const largest = [...runOrder].sort((a, b) => work.get(branch[b])!.size - work.get(branch[a])!.size || a - b);
    const other = improve(greedy(largest)).layout;
    if (cost(other.load) < cost(plan.load)) plan = other;
  }
  const { held, moved, planned } = plan;
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
