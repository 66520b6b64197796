/**
 * The build plan seeded from what the engines already hold (issue 27
 * item 2), against two real engines (the local one and a private second
 * dockerd): a variant built earlier on the second engine is planned there,
 * with nothing to run, and without the seeding (--rebuild) it would go to
 * the first.
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { engineAddress } from '../../src/engine/client';
import { planRun } from '../../src/pipeline/build-order';
import type { PipelineOptions } from '../../src/pipeline/context';
import { STAGES } from '../../src/pipeline/registry';
import { newContext } from '../../src/pipeline/run-state';
import { runPipeline } from '../../src/pipeline/runner';
import { loadRecipe } from '../../src/recipe/load';
import { resolveValues } from '../../src/recipe/params';
import type { Recipe } from '../../src/recipe/types';
import { removeTestImages, writeTinyRecipe } from '../support/engine';
import { startSecondEngine, type SecondEngine } from '../support/second-engine';

jest.setTimeout(300_000);

process.env.SIFKIT_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'sifkit-state-'));

describe('the build plan seeded from the engines’ caches, on two real engines', () => {
  let dir: string;
  let recipe: Recipe;
  let engine2: SecondEngine;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-plan-cache-'));
    recipe = await loadRecipe(await writeTinyRecipe(dir));
    engine2 = await startSecondEngine();
  });
  afterAll(async () => {
    await engine2?.stop();
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const context = (versions: string[], options: PipelineOptions) =>
    newContext({
      recipe,
      values: versions.map((v) => resolveValues(recipe, { v })),
      signal: new AbortController().signal,
      options: { logDir: path.join(dir, 'logs'), ...options },
      date: '20261203',
    });

  it('plans a variant built earlier on the second engine there, with no step to run', async () => {
    const built = context(['1.0'], { engines: [engine2.address] });
    await runPipeline(
      {
        name: 'h46',
        description: 'build on the second engine',
        stages: ['render', 'build'].map((stage) => ({ stage, with: {} })),
      },
      built,
      STAGES,
      { renderer: 'silent', jobs: 1 },
    );
    expect(built.variants[0].error?.message).toBeUndefined();

    const engines = [engineAddress(), engine2.address];
    const plan = await planRun(context(['1.0', '2.0'], { engines }));
    const [one, two] = plan.variants;
    expect(one).toMatchObject({ engine: engine2.address, after: undefined });
    expect([one.shared, one.cached]).toEqual([one.steps, one.steps]);
    // 2.0 shares the base and the test label with it, not its RUN: it runs that and what follows, wherever it goes.
    expect(two.cached === 0 || two.engine === engine2.address).toBe(true);
    expect(plan.engines.find((e) => e.engine === engine2.address)!.cached).toBeGreaterThanOrEqual(one.steps);
    expect(plan.executed).toBeLessThan(plan.distinct);

    // --rebuild takes nothing from the cache: the same variant then goes to the first engine and runs every step.
    const rebuilt = await planRun(context(['1.0', '2.0'], { engines, rebuild: true }));
    expect(rebuilt.variants[0]).toMatchObject({ engine: engineAddress(), shared: 0, cached: 0 });
    expect(rebuilt.variants.map((v) => v.cached)).toEqual([0, 0]);
    expect(rebuilt.engines.map((e) => e.cached)).toEqual([0, 0]);
  });
});
