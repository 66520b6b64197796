/**
 * Build steps across a matrix (27 item 2): the steps the build plan runs
 * against the matrix's distinct steps, for the example's matrix on 1 and
 * 2 engines and LUMI's mpi4py matrix on 1, 2 and 4 (planned from the
 * rendered definitions: the plan is what the build stage follows), and the
 * Slurm projection of 20 variants on 4 engines and 16 nodes, the barrier
 * of before against the pipeline, with and without shared steps.
 */
import { loadRecipe } from '../src/recipe/load';
import { readRecipeInputs, renderRecipe } from '../src/recipe/render-recipe';
import { variantValues } from '../src/recipe/params';
import { variantSteps } from '../src/pipeline/build-order';
import { isHeavy, planBuilds } from '../src/pipeline/build-plan';
import type { BuildStep } from '../src/recipe/steps';
import { project, projectPipelined, type StageTimes } from './projection';
import type { Figure } from './table';

async function matrixSteps(name: string): Promise<BuildStep[][]> {
  const recipe = await loadRecipe(name);
  const inputs = await readRecipeInputs(recipe);
  return Promise.all(
    variantValues(recipe, {}, true).map(async (values) =>
      variantSteps(recipe, await renderRecipe(recipe, { values, date: '20260101', inputs }), inputs.files),
    ),
  );
}

/** Measured here on 2026-12-01 (README, SIFKIT_BENCH_ONLY=slurm): the example, one variant. */
const HERE: StageTimes = { build: 390, archive: 11, convert: 252, test: 27, publish: 11, queue: 3 };

export async function stepsBenches(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const shares: Record<string, number> = {};
  for (const [name, engineCounts] of [
    ['mpi4py-cpu', [1, 2]],
    ['mpi4py', [1, 2, 4]],
  ] as const) {
    const steps = await matrixSteps(name);
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
      shares[`${name}/${e}`] = plan.executedHeavy / heavyAll;
    }
  }
  const before = project(HERE, 20, 16, 4).slurm;
  const piped = projectPipelined(HERE, 20, 16, 4);
  const share = shares['mpi4py/4'];
  const pipedShared = projectPipelined(HERE, 20, 16, 4, share);
  console.log(
    `Slurm, 20 variants, 4 engines, 16 nodes (stage times measured here): barrier ${(before / 60).toFixed(1)} min, pipeline ${(piped / 60).toFixed(1)} min, pipeline with LUMI's planned build share ${(share * 100).toFixed(0)}% ${(pipedShared / 60).toFixed(1)} min`,
  );
  figures.push(
    {
      figure: 'slurm projection: 20 variants, 4 engines, 16 nodes, pipeline (baseline: barrier)',
      sifkit: piped / 60,
      baseline: before / 60,
      unit: 'min',
      target: 'ratio <= 0.60',
      met: piped <= 0.6 * before,
    },
    {
      figure: `slurm projection: the same, shared steps as planned for LUMI's matrix (${(share * 100).toFixed(0)}% of build steps run)`,
      sifkit: pipedShared / 60,
      baseline: before / 60,
      unit: 'min',
      target: 'ratio <= 0.60',
      met: pipedShared <= 0.6 * before,
    },
  );
  return figures;
}
