/**
 * Build steps across a matrix (27 item 2): the steps the build plan runs
 * against the matrix's distinct steps, for the example's matrix on 1 and
 * 2 engines and LUMI's mpi4py matrix on 1, 2 and 4 (planned from the
 * rendered definitions: the plan is what the build stage follows), and the
 * Slurm projection of 20 variants on 4 engines and 16 nodes: the barrier
 * of before against the pipeline sifkit runs, for 20 real variants of
 * LUMI's matrix (its first 20 rows) planned over 4 engines with
 * planBuilds, each engine's line timed by the heavy steps the plan gives
 * it (projection.ts projectPlanned).
 */
import { loadRecipe } from '../src/recipe/load';
import { readRecipeInputs, renderRecipe } from '../src/recipe/render-recipe';
import { variantValues } from '../src/recipe/params';
import { variantBuildArgs, variantSteps } from '../src/pipeline/build-order';
import { isHeavy, MOVE_COST, planBuilds } from '../src/pipeline/build-plan';
import { buildSteps, countRunSteps, type BuildStep } from '../src/recipe/steps';
import { project, projectPlanned, type StageTimes } from './projection';
import type { Figure } from './table';

/**
 * The matrix's steps as the plan keys them, and as their text alone keys
 * them (no build argument's value). The plan keys `SERVER_PORT` and
 * `SERVED_DIGEST` by the values the builds pass (variantBuildArgs): one
 * served digest for the whole run, as the run's builds share one file
 * server, so the two counts of distinct RUN steps agree. LUMI's recipe
 * names no served directory: the plan keys its variants as served one
 * directory of unknown digest, as `release --dry-run` without
 * --server-files says. Before (keyed by each variant's declared served
 * files) the plan counted 164 distinct RUN steps where the text counts 143.
 */
async function matrixSteps(name: string): Promise<{ planned: BuildStep[][]; text: BuildStep[][] }> {
  const recipe = await loadRecipe(name);
  const inputs = await readRecipeInputs(recipe);
  const rendered = await Promise.all(
    variantValues(recipe, {}, true).map((values) => renderRecipe(recipe, { values, date: '20260101', inputs })),
  );
  return {
    planned: rendered.map((r) => variantSteps(r, inputs.files, variantBuildArgs(recipe, r, {}))),
    text: rendered.map((r) => buildSteps(r.parsed, { files: inputs.files })),
  };
}

/** Measured here on 2026-12-01 (README, SIFKIT_BENCH_ONLY=slurm): the example, one variant. */
const HERE: StageTimes = { build: 390, archive: 11, convert: 252, test: 27, publish: 11, queue: 3 };

/**
 * The Slurm projection of 20 of LUMI's variants on 4 engines and 16 nodes
 * (the case), from the stage times measured here. A heavy step
 * takes the same time everywhere: a variant built whole takes HERE.build
 * on average over the 20, as every build does in the barrier of before.
 */
function slurmProjection(lumi: BuildStep[][]): Figure[] {
  const n = 20;
  const engines = Array.from({ length: 4 }, (_, i) => `engine${i}`);
  const steps = lumi.slice(0, n);
  const whole = steps.map((s) => s.filter(isHeavy).length);
  const stepSeconds = HERE.build / (whole.reduce((a, b) => a + b, 0) / n);
  const plan = planBuilds(steps, engines);
  const planned = projectPlanned(
    HERE,
    plan.variants.map((v) => ({
      index: v.index,
      engine: v.engine,
      heavy: v.heavy,
      after: v.after,
      move: v.move ? MOVE_COST : undefined,
    })),
    stepSeconds,
    16,
  );
  // Pipelining alone: each variant built whole, dealt to the engines in turn, nothing shared.
  const alone = projectPlanned(
    HERE,
    steps.map((_, i) => ({ index: i, engine: engines[i % engines.length], heavy: whole[i] })),
    stepSeconds,
    16,
  );
  const before = project(HERE, n, 16, engines.length).slurm;
  const min = (s: number) => `${(s / 60).toFixed(1)} min`;
  console.log(
    `Slurm, ${n} of LUMI's variants (${plan.executedHeavy} heavy steps planned, ${whole.reduce((a, b) => a + b, 0)} if each built whole; ${stepSeconds.toFixed(1)} s a step), 4 engines, 16 nodes: barrier ${min(before)}, pipeline alone ${min(alone.wall)}, pipeline as planned ${min(planned.wall)} (last archive at ${min(planned.lastArchive)})`,
  );
  for (const e of planned.engines)
    console.log(`  ${e.engine}: ${e.variants} variants, ${e.heavy} heavy steps, builds for ${min(e.busy)}`);
  return [
    {
      figure: `slurm projection: ${n} LUMI variants, 4 engines, 16 nodes, pipeline, each built whole (baseline: barrier)`,
      sifkit: alone.wall / 60,
      baseline: before / 60,
      unit: 'min',
      target: 'ratio <= 0.60',
      met: alone.wall <= 0.6 * before,
    },
    {
      figure: `slurm projection: the same as planned (${plan.executedHeavy} of ${whole.reduce((a, b) => a + b, 0)} heavy steps run, engines ${plan.engines.map((e) => e.variants.length).join('/')})`,
      sifkit: planned.wall / 60,
      baseline: before / 60,
      unit: 'min',
      target: 'ratio <= 0.60',
      met: planned.wall <= 0.6 * before,
    },
  ];
}

export async function stepsBenches(): Promise<Figure[]> {
  const figures: Figure[] = [];
  let lumi: BuildStep[][] = [];
  for (const [name, engineCounts] of [
    ['mpi4py-cpu', [1, 2]],
    ['mpi4py', [1, 2, 4]],
  ] as const) {
    const { planned: steps, text } = await matrixSteps(name);
    if (name === 'mpi4py') lumi = steps;
    const [asPlanned, asText] = [countRunSteps(steps), countRunSteps(text)];
    figures.push({
      figure: `steps: ${name} matrix (${steps.length}), distinct RUN steps as the plan keys them (baseline: by text)`,
      sifkit: asPlanned.distinctRunSteps,
      baseline: asText.distinctRunSteps,
      unit: 'steps',
      target: 'ratio 1.00',
      met: asPlanned.distinctRunSteps === asText.distinctRunSteps,
    });
    const heavyAll = steps.reduce((n, s) => n + s.filter(isHeavy).length, 0);
    for (const e of engineCounts) {
      const plan = planBuilds(
        steps,
        Array.from({ length: e }, (_, i) => `engine${i}`),
      );
      console.log(
        `${name}, ${steps.length} variants on ${e} engine(s): ${plan.steps} steps (${heavyAll} RUN/COPY/ADD), ${plan.distinct} distinct (${plan.distinctHeavy}), ${plan.executed} run (${plan.executedHeavy}); variants per engine ${plan.engines.map((x) => x.variants.length).join('/')}`,
      );
      figures.push({
        figure: `steps: ${name} matrix (${steps.length}) on ${e} engine(s), RUN/COPY/ADD run (baseline: distinct)`,
        sifkit: plan.executedHeavy,
        baseline: plan.distinctHeavy,
        unit: 'steps',
        target: 'ratio 1.00',
        met: plan.executedHeavy === plan.distinctHeavy,
      });
    }
  }
  figures.push(...slurmProjection(lumi));
  return figures;
}
