/**
 * The runner over small fake stages: order per variant, skips with their
 * reason, one failing variant leaving the others alone, --jobs, and the
 * build/convert slots bounding their work whatever --jobs says.
 */
import { OperationError } from '../../src/errors';
import { loadRecipe } from '../../src/recipe/load';
import type { Recipe } from '../../src/recipe/types';
import { runPipeline } from '../../src/pipeline/runner';
import { Gate, defOf, fakeContext, fakeStage, nameOf, variants } from '../support/pipeline';
import { until } from '../support/poll';

let recipe: Recipe;
beforeAll(async () => {
  recipe = await loadRecipe('mpi4py');
});

const silently = (jobs: number) => ({ renderer: 'silent' as const, jobs });

describe('the pipeline runner', () => {
  it('runs the stages in order for each variant', async () => {
    const log: string[] = [];
    const record = (s: string) =>
      fakeStage(s, async (_c, v) => {
        log.push(`${nameOf(v)}:${s}`);
      });
    const ctx = fakeContext(recipe, variants(3));
    await runPipeline(defOf('a', 'b', 'c'), ctx, { a: record('a'), b: record('b'), c: record('c') }, silently(3));
    for (const name of ['v0', 'v1', 'v2'])
      expect(log.filter((l) => l.startsWith(`${name}:`))).toEqual([`${name}:a`, `${name}:b`, `${name}:c`]);
    expect(ctx.variants.every((v) => !v.error)).toBe(true);
  });

  it('records why a stage was skipped, and does not run it', async () => {
    const ran: string[] = [];
    const b = fakeStage(
      'b',
      async (_c, v) => {
        ran.push(nameOf(v));
      },
      (v) => (nameOf(v) === 'v1' ? 'done already' : undefined),
    );
    const ctx = fakeContext(recipe, variants(2));
    await runPipeline(defOf('b'), ctx, { b }, silently(1));
    expect(ran).toEqual(['v0']);
    expect(ctx.variants.map((v) => v.skipped)).toEqual([{}, { b: 'done already' }]);
  });

  it('stops a failing variant at its stage and runs the others to the end', async () => {
    const log: string[] = [];
    const stages = {
      a: fakeStage('a', async (_c, v) => {
        log.push(`${nameOf(v)}:a`);
      }),
      b: fakeStage('b', async (_c, v) => {
        if (nameOf(v) === 'v1') throw new OperationError('boom', 'v1 broke');
        log.push(`${nameOf(v)}:b`);
      }),
      c: fakeStage('c', async (_c, v) => {
        log.push(`${nameOf(v)}:c`);
      }),
    };
    const ctx = fakeContext(recipe, variants(3));
    await runPipeline(defOf('a', 'b', 'c'), ctx, stages, silently(1));
    const [v0, v1, v2] = ctx.variants;
    expect(v1.error?.message).toBe('v1 broke');
    expect(v1.failedStage).toBe('b');
    expect(log.filter((l) => l.startsWith('v1:'))).toEqual(['v1:a']);
    expect([v0.error, v2.error]).toEqual([undefined, undefined]);
    expect(log.filter((l) => l.endsWith(':c')).sort()).toEqual(['v0:c', 'v2:c']);
  });

  it.each([1, 2, 3])('runs --jobs %i variants at once, no more', async (jobs) => {
    const gate = new Gate();
    const ctx = fakeContext(recipe, variants(5));
    const run = runPipeline(defOf('hold'), ctx, { hold: fakeStage('hold', () => gate.pass()) }, silently(jobs));
    for (let left = 5; left > 0; left--) {
      // As many as may run are waiting (more would show in max), then one goes.
      await until(() => gate.queued >= Math.min(jobs, left), 5);
      gate.openOne();
    }
    await run;
    expect(gate.max).toBe(jobs);
    expect(ctx.variants.every((v) => !v.error)).toBe(true);
  });

  it('is a pipeline, not a barrier: a variant reaches its last stage while another is held at its archive', async () => {
    // v1's archive waits until v0's Slurm stage has started: a barrier between stages would never let it.
    let firstSubmitted!: () => void;
    const submitted = new Promise<void>((r) => (firstSubmitted = r));
    const order: string[] = [];
    const stages = {
      archive: fakeStage('archive', async (_c, v) => {
        if (nameOf(v) === 'v1') await submitted;
        order.push(`${nameOf(v)}:archive`);
      }),
      slurm: fakeStage('slurm', async (_c, v) => {
        order.push(`${nameOf(v)}:slurm`);
        if (nameOf(v) === 'v0') firstSubmitted();
      }),
    };
    const ctx = fakeContext(recipe, variants(2));
    await runPipeline(defOf('archive', 'slurm'), ctx, stages, silently(2));
    expect(order).toEqual(['v0:archive', 'v0:slurm', 'v1:archive', 'v1:slurm']);
    expect(ctx.variants.every((v) => !v.error)).toBe(true);
  });

  it('lets builds and conversions through their own slots whatever --jobs is', async () => {
    const builds = new Gate();
    const converts = new Gate();
    let arrived = 0;
    const ctx = fakeContext(recipe, variants(4), { slots: { build: 1, convert: 2 } });
    const stages = {
      build: fakeStage('build', async (c) => {
        arrived++;
        await c.run.slots.use('build', () => builds.pass());
      }),
      convert: fakeStage('convert', (c) => c.run.slots.use('convert', () => converts.pass())),
    };
    const run = runPipeline(defOf('build', 'convert'), ctx, stages, silently(4));
    // Every variant is at the build stage, one inside its slot.
    await until(() => arrived === 4 && builds.queued === 1, 5);
    for (let left = 4; left > 0; left--) {
      await until(() => builds.queued === 1, 5);
      builds.openOne();
    }
    for (let left = 4; left > 0; left--) {
      await until(() => converts.queued >= Math.min(2, left), 5);
      converts.openOne();
    }
    await run;
    expect(builds.max).toBe(1);
    expect(converts.max).toBe(2);
    expect(ctx.variants.every((v) => !v.error)).toBe(true);
  });
});
