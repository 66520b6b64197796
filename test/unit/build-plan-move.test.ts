/**
 * The build plan moves a prefix between engines (save/load) when that
 * costs less than running it again (issue 27 item 2): which steps an image
 * brings (its own history: its last stage and the stages it starts FROM,
 * not those it copies from), when a move is chosen, and what the plan then
 * counts as run. Pure; the real move is test/integration/prefix-move.test.ts.
 */
import { MOVE_COST, planBuilds, type HeldImage } from '../../src/pipeline/build-plan';
import { parseDockerfile } from '../../src/recipe/parsed-dockerfile';
import { buildSteps, imageLineage } from '../../src/recipe/steps';

/** Three shared steps, then `own` of the variant's own. */
const def = (v: string, own = 4, shared = 3) =>
  [
    'FROM busybox',
    ...Array.from({ length: shared }, (_, i) => `RUN shared ${i}`),
    ...Array.from({ length: own }, (_, i) => `RUN ${v} own ${i}`),
    '',
  ].join('\n');

const held = (v: string, own?: number, shared?: number): HeldImage => {
  const steps = buildSteps(parseDockerfile(def(v, own, shared)));
  return { id: `sha256:${v}`, ref: `img:${v}`, lineage: imageLineage(steps) };
};

describe('the steps an image holds (imageLineage)', () => {
  it('follows FROM stages, not COPY --from ones', () => {
    const steps = buildSteps(
      parseDockerfile(
        [
          'FROM debian AS base',
          'RUN base',
          'FROM base AS side',
          'RUN side',
          'FROM base AS image',
          'RUN image',
          'COPY --from=side /x /x',
        ].join('\n'),
      ),
    );
    const lineage = imageLineage(steps);
    const runs = steps.filter((s) => s.instruction !== 'FROM' && lineage.has(s.key)).map((s) => s.text);
    expect(runs).toEqual(['RUN base', 'RUN image', 'COPY --from=side /x /x']);
    expect(steps.find((s) => s.text === 'FROM base AS image')!.from).toBe(0);
  });
});

describe('moving a prefix between engines', () => {
  const engines = ['A', 'B'];
  const cachedOnB = (img: HeldImage) => new Map([['B', new Set(img.lineage)]]);

  it('moves the image B holds to A for a variant that would otherwise wait behind B', () => {
    const img = held('1.0');
    const variants = [buildSteps(parseDockerfile(def('2.0'))), buildSteps(parseDockerfile(def('3.0')))];
    const plan = planBuilds(variants, engines, cachedOnB(img), new Map([['B', [img]]]));
    expect(plan.variants[0]).toMatchObject({ engine: 'B', cached: 4 });
    expect(plan.variants[0].move).toBeUndefined();
    expect(plan.variants[1]).toMatchObject({
      engine: 'A',
      move: { from: 'B', image: 'sha256:1.0', ref: 'img:1.0', steps: 4, heavy: 3 },
      // The moved steps are held when it builds, none of them cached there before the run, none built by a variant.
      shared: 4,
      cached: 0,
      after: undefined,
    });
    // A runs only the variant's own steps; the moved ones of the matrix (FROM and the three shared) are counted apart.
    expect(plan.engines[0]).toMatchObject({ engine: 'A', heavy: 4, moved: 4 });
    expect(plan.executedHeavy).toBe(8);
  });

  it('without the image to move, the same variant waits behind B, or would run the shared steps again', () => {
    const img = held('1.0');
    const variants = [buildSteps(parseDockerfile(def('2.0'))), buildSteps(parseDockerfile(def('3.0')))];
    const plan = planBuilds(variants, engines, cachedOnB(img));
    expect(plan.variants.map((v) => [v.engine, v.move])).toEqual([
      ['B', undefined],
      ['B', undefined],
    ]);
  });

  it(`does not move a prefix of ${MOVE_COST} heavy step or fewer: it is built again`, () => {
    const img = held('1.0', 4, MOVE_COST);
    const variants = [
      buildSteps(parseDockerfile(def('2.0', 4, MOVE_COST))),
      buildSteps(parseDockerfile(def('3.0', 4, MOVE_COST))),
    ];
    const plan = planBuilds(variants, engines, cachedOnB(img), new Map([['B', [img]]]));
    expect(plan.variants.every((v) => v.move === undefined)).toBe(true);
  });

  it('moves once per engine: a later variant there waits for the one that loads it', () => {
    const img = held('1.0');
    const variants = ['2.0', '3.0', '4.0', '5.0'].map((v) => buildSteps(parseDockerfile(def(v))));
    const plan = planBuilds(variants, engines, cachedOnB(img), new Map([['B', [img]]]));
    const onA = plan.variants.filter((v) => v.engine === 'A');
    expect(onA.length).toBeGreaterThanOrEqual(2);
    expect(onA.filter((v) => v.move)).toHaveLength(1);
    const mover = onA.find((v) => v.move)!;
    for (const v of onA.filter((x) => !x.move)) expect(v.after).toBeGreaterThanOrEqual(mover.index);
  });

  it('moves nothing from or to an engine outside the run', () => {
    const img = held('1.0');
    const variants = [buildSteps(parseDockerfile(def('2.0'))), buildSteps(parseDockerfile(def('3.0')))];
    const plan = planBuilds(variants, ['A'], new Map([['C', new Set(img.lineage)]]), new Map([['C', [img]]]));
    expect(plan.variants.every((v) => v.move === undefined && v.engine === 'A')).toBe(true);
  });
});
