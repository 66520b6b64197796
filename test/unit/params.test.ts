import * as fc from 'fast-check';
import { InputError } from '../../src/errors';
import { loadRecipe } from '../../src/recipe/load';
import { parseSets, resolveValues, variantValues } from '../../src/recipe/params';
import type { Recipe } from '../../src/recipe/types';

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
  it('any value with an unsafe character is refused (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('\n', "'", '"', '$', '`', ';'), fc.string(), (a, bad, b) => {
        expect(() => resolveValues(recipe, { cpe: `${a}${bad}${b}` })).toThrow(InputError);
      }),
    );
  });
});
