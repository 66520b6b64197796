import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadRecipe, readFragments, recipeDefsRoot } from '../src/recipe/load';
import { variantValues } from '../src/recipe/params';
import { renderVariant } from '../src/recipe/render';
import { timed, type Figure } from './table';

/** Renders the full mpi4py matrix in-process, against LUMI's way: `cat` of the fragments per variant. */
export async function renderBench(): Promise<Figure[]> {
  // CPU time beside wall time: on a shared machine the wall time also counts
  // the waits for a core, which say nothing about sifkit.
  const cpu0 = process.cpuUsage();
  const [t] = await timed(async () => {
    const recipe = await loadRecipe('mpi4py');
    const fragments = await readFragments(recipe);
    for (const values of variantValues(recipe, {}, true)) {
      renderVariant({
        recipe,
        values,
        fragments,
        files: {},
        provenance: { sifkitVersion: 'bench', revision: 'bench' },
        date: '20241007',
      });
    }
  });
  const cpuUsed = process.cpuUsage(cpu0);
  const cpu = (cpuUsed.user + cpuUsed.system) / 1e6;
  const recipe = await loadRecipe('mpi4py');
  const files = recipe.fragments.map((f) => path.join(recipeDefsRoot(recipe), f));
  const [base] = await timed(async () => {
    for (let i = 0; i < recipe.matrix.length; i++) execFileSync('cat', files);
  });
  const load = os.loadavg()[0].toFixed(1);
  return [
    {
      figure: `render mpi4py matrix (${recipe.matrix.length} variants, with lint; load ${load})`,
      sifkit: t,
      baseline: base,
      unit: 's',
      target: '< 1 s',
      met: t < 1,
    },
    { figure: `  the same, CPU time of the process`, sifkit: cpu, unit: 's', target: '< 1 s', met: cpu < 1 },
  ];
}
