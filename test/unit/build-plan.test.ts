/**
 * The build plan over a matrix: steps keyed as the layer cache keys them
 * (a COPY by what it copies, a per-build ARG by what it stands for), the
 * prefix tree's distinct steps, and variants routed to the engine holding
 * their longest prefix, after the variant that builds it.
 */
import { planBuilds } from '../../src/pipeline/build-plan';
import { parseDockerfile } from '../../src/recipe/parsed-dockerfile';
import { buildSteps, instructions } from '../../src/recipe/steps';
import { loadRecipe } from '../../src/recipe/load';
import { readRecipeInputs, renderRecipe } from '../../src/recipe/render-recipe';
import { variantValues } from '../../src/recipe/params';
import { variantBuildArgs, variantSteps } from '../../src/pipeline/build-order';

const files = { 'a.txt': 'x:1', 'dir/b': '-:2', 'dir/c': '-:3', other: '-:4' };

/** A definition: a shared base, then a tail per variant. */
function def(tail: string[], base = ['RUN apt-get install -y a', 'COPY dir/ /opt/dir/', 'RUN make']): string {
  return ['FROM debian:bookworm-slim', ...base, ...tail, ''].join('\n');
}

describe('build steps', () => {
  it('joins continued lines and drops comments, also inside a continued instruction', () => {
    expect(instructions(parseDockerfile('# head\nFROM x\n\nRUN a ; \\\n# note\n  b\nENV A=1\n'))).toEqual([
      { line: 2, instruction: 'FROM', text: 'FROM x' },
      { line: 4, instruction: 'RUN', text: 'RUN a ; b' },
      { line: 7, instruction: 'ENV', text: 'ENV A=1' },
    ]);
  });

  it('keys a COPY by the content it copies, and chains every key to the steps before', () => {
    const one = buildSteps(parseDockerfile(def(['RUN tail'])), { files });
    const changed = buildSteps(parseDockerfile(def(['RUN tail'])), { files: { ...files, 'dir/c': '-:changed' } });
    const unrelated = buildSteps(parseDockerfile(def(['RUN tail'])), { files: { ...files, other: '-:changed' } });
    expect(one.map((s) => s.instruction)).toEqual(['FROM', 'RUN', 'COPY', 'RUN', 'RUN']);
    expect(changed[1].key).toBe(one[1].key);
    // Same COPY line, other content: not the same step, nor is anything after it.
    expect(changed[2].key).not.toBe(one[2].key);
    expect(changed[4].key).not.toBe(one[4].key);
    expect(unrelated.map((s) => s.key)).toEqual(one.map((s) => s.key));
    // A wildcard and a single file.
    const star = (f: Record<string, string>) =>
      buildSteps(parseDockerfile('FROM x\nCOPY dir/* a.txt /o/\n'), { files: f })[1].key;
    expect(star({ ...files, 'dir/b': '-:9' })).not.toBe(star(files));
    expect(star({ ...files, other: '-:9' })).toBe(star(files));
  });

  it('keys a per-build ARG by what it stands for, so what follows differs when that does', () => {
    const text = 'FROM x\nARG SERVED_DIGEST\nRUN fetch\n';
    const a = buildSteps(parseDockerfile(text), { files, args: { SERVED_DIGEST: 'cpe-23.09.tar licensed' } });
    const b = buildSteps(parseDockerfile(text), { files, args: { SERVED_DIGEST: 'cpe-24.03.tar licensed' } });
    expect(a[0].key).toBe(b[0].key);
    expect(a[2].key).not.toBe(b[2].key);
  });
});

describe('the build plan', () => {
  const matrix = [def(['RUN tail 1']), def(['RUN tail 2']), def(['RUN tail 3'])].map((d) =>
    buildSteps(parseDockerfile(d), { files }),
  );

  it('counts the steps of every definition against the distinct ones of the prefix tree', () => {
    const plan = planBuilds(matrix, []);
    expect(plan.steps).toBe(15);
    expect(plan.distinct).toBe(4 + 3);
    expect(plan.distinctHeavy).toBe(3 + 3);
    expect(plan.executed).toBe(plan.distinct);
    expect(plan.variants.map((v) => [v.engine, v.shared, v.after])).toEqual([
      ['', 0, undefined],
      ['', 4, 0],
      ['', 4, 0],
    ]);
  });

  it('keeps variants that share a long prefix on one engine: nothing runs twice', () => {
    const plan = planBuilds(matrix, ['A', 'B']);
    expect(plan.executedHeavy).toBe(plan.distinctHeavy);
    expect(plan.engines.map((e) => [e.engine, e.variants, e.heavy])).toEqual([
      ['A', [0, 1, 2], 6],
      ['B', [], 0],
    ]);
  });

  it('spreads groups that share little over the engines, each with its own variants after their leader', () => {
    // Two families (rocm 5 and 6) with a long install each, a one-step shared base.
    const family = (r: string, tail: string) =>
      buildSteps(
        parseDockerfile(
          def([`RUN tail ${tail}`], ['RUN base', ...Array.from({ length: 8 }, (_, i) => `RUN rocm ${r} part ${i}`)]),
        ),
        {
          files,
        },
      );
    const steps = [family('5', 'a'), family('6', 'a'), family('5', 'b'), family('6', 'b')];
    const plan = planBuilds(steps, ['A', 'B']);
    expect(plan.variants.map((v) => [v.engine, v.after])).toEqual([
      ['A', undefined],
      ['B', undefined],
      ['A', 0],
      ['B', 1],
    ]);
    // Only the shared base runs twice, once per engine.
    expect(plan.executedHeavy).toBe(plan.distinctHeavy + 1);
  });

  it('moves whole families to idle engines when the run gets shorter by more than twice what they repeat', () => {
    // LUMI's shape: every variant shares one cheap step (the checks' files), then each family
    // (an OS and ROCm) has a long base of its own, and its variants a tail of two steps each.
    const variant = (family: string, tail: string) =>
      buildSteps(
        parseDockerfile(
          [
            'FROM scratch AS checks',
            'COPY dir/ /opt/checks/',
            `FROM base-${family}`,
            ...Array.from({ length: 8 }, (_, i) => `RUN ${family} base ${i}`),
            `RUN ${family} tail ${tail} 1`,
            `RUN ${family} tail ${tail} 2`,
            'COPY --from=checks /opt/checks /opt/checks',
          ].join('\n'),
        ),
        { files },
      );
    const families = [
      ['p', 1],
      ['q', 4],
      ['r', 4],
      ['s', 1],
    ] as const;
    const steps = families.flatMap(([f, n]) => Array.from({ length: n }, (_, i) => variant(f, String(i))));
    const plan = planBuilds(steps, ['A', 'B', 'C', 'D']);
    const familyOf = (i: number) =>
      families.find((_, k) => i < families.slice(0, k + 1).reduce((a, [, n]) => a + n, 0))![0];
    const byEngine = plan.engines.map((e) => [...new Set(e.variants.map(familyOf))].join(''));
    // Taken one at a time in the run's order, r joins p's engine and s q's (the busiest engine sets
    // the run's length either way), and no one family moved alone shortens it; from the largest
    // families first, q and r each have an engine, and p and s share one.
    expect(byEngine.filter(Boolean).sort()).toEqual(['ps', 'q', 'r']);
    // What repeats: the checks' one COPY on each engine past the first.
    expect(plan.executedHeavy).toBe(plan.distinctHeavy + 2);
    // The longest line is p's and s's: the checks' COPY, then each a base, a tail and the copy of the checks.
    expect(Math.max(...plan.engines.map((e) => e.heavy))).toBe(1 + (8 + 2 + 1) * 2);
    // Each variant still waits only for one of its own engine.
    for (const v of plan.variants)
      if (v.after !== undefined) expect(plan.variants.find((w) => w.index === v.after)!.engine).toBe(v.engine);
  });

  it('follows stages: a step held after one that is not (same Python, other OSU) is shared too', () => {
    const staged = (osu: string) =>
      buildSteps(
        parseDockerfile(
          [
            'FROM debian AS rocm',
            'RUN rocm',
            'FROM rocm AS osu',
            `RUN osu ${osu}`,
            'FROM rocm',
            'RUN python',
            'COPY --from=osu /opt/osu /opt/osu',
          ].join('\n'),
        ),
      );
    const plan = planBuilds([staged('7.2'), staged('7.3')], []);
    // FROM, RUN rocm, both FROM rocm, RUN python: held; the OSU step and the copy of it: not.
    expect(plan.variants[1]).toMatchObject({ steps: 7, shared: 5, after: 0 });
    expect(plan.distinct).toBe(8);
    expect(plan.executed).toBe(plan.distinct);
    expect(plan.distinctHeavy).toBe(2 + 2 + 2);
  });

  it("seeded with what an engine's cache holds: a variant goes there, runs only the rest, and waits for no one", () => {
    const cachedOnB = new Map([['B', new Set(matrix[1].map((s) => s.key))]]);
    const plan = planBuilds(matrix, ['A', 'B'], cachedOnB);
    expect(plan.variants.map((v) => [v.engine, v.shared, v.cached, v.after])).toEqual([
      ['B', 4, 4, undefined],
      ['B', 5, 5, undefined],
      ['B', 4, 4, undefined],
    ]);
    // Only the two tails the cache lacks run; the cached steps are not counted as run.
    expect([plan.executed, plan.executedHeavy]).toEqual([2, 2]);
    expect(plan.engines.map((e) => [e.engine, e.run, e.cached])).toEqual([
      ['A', 0, 0],
      ['B', 2, 5],
    ]);
    // Keys the matrix does not use are not counted as cached; an unknown engine's cache is ignored.
    const other = new Map([
      ['A', new Set(['f'.repeat(64)])],
      ['Z', new Set(matrix[0].map((s) => s.key))],
    ]);
    expect(planBuilds(matrix, ['A'], other).engines[0]).toMatchObject({ cached: 0, run: plan.distinct });
  });

  it('leaves out a variant without steps (its render failed) and names each engine once', () => {
    const plan = planBuilds([matrix[0], undefined, matrix[1]], ['A', 'A']);
    expect(plan.variants.map((v) => v.index)).toEqual([0, 2]);
    expect(plan.engines).toHaveLength(1);
  });

  it("the example's matrix shares every step but its tail: one engine of two builds it, ratio 1.00", async () => {
    const recipe = await loadRecipe('mpi4py-cpu');
    const inputs = await readRecipeInputs(recipe);
    const values = variantValues(recipe, {}, true);
    expect(values.length).toBeGreaterThan(1);
    const steps = await Promise.all(
      values.map(async (v) => {
        const rendered = await renderRecipe(recipe, { values: v, date: '20260101', inputs });
        return variantSteps(rendered, inputs.files, variantBuildArgs(recipe, rendered, {}));
      }),
    );
    for (const engines of [[], ['A', 'B']]) {
      const plan = planBuilds(steps, engines);
      expect(plan.executed).toBe(plan.distinct);
      expect(plan.distinct).toBeLessThan(plan.steps);
    }
  });
});
