import * as fc from 'fast-check';
import { definitionHash } from '../../src/recipe/hash';
import { renderFor } from '../support/recipes';

const inputs = fc.record({
  body: fc.string(),
  buildArgs: fc.dictionary(fc.string({ minLength: 1 }), fc.string()),
  files: fc.dictionary(fc.string({ minLength: 1 }), fc.string({ minLength: 64, maxLength: 64 })),
});

describe('definition hash', () => {
  it('is stable: same inputs, same hash, whatever the key order', () => {
    fc.assert(
      fc.property(inputs, (i) => {
        const reordered = {
          body: i.body,
          buildArgs: Object.fromEntries(Object.entries(i.buildArgs).reverse()),
          files: Object.fromEntries(Object.entries(i.files).reverse()),
        };
        expect(definitionHash(reordered)).toBe(definitionHash(i));
      }),
    );
  });
  it('is sensitive: any change of body, arg or file gives another hash', () => {
    fc.assert(
      fc.property(inputs, fc.string({ minLength: 1 }), (i, extra) => {
        const h = definitionHash(i);
        expect(definitionHash({ ...i, body: i.body + extra })).not.toBe(h);
        expect(definitionHash({ ...i, buildArgs: { ...i.buildArgs, [`x${extra}`]: extra } })).not.toBe(h);
        expect(definitionHash({ ...i, files: { ...i.files, [`f${extra}`]: 'a'.repeat(64) } })).not.toBe(h);
      }),
    );
  });
  it('does not run fields together', () => {
    expect(definitionHash({ body: 'ab', buildArgs: {}, files: {} })).not.toBe(
      definitionHash({ body: 'a', buildArgs: { b: '' }, files: {} }),
    );
  });
  it('on real renders: same parameters same hash, one parameter changed another', async () => {
    const a = await renderFor('mpi4py', { rocm: '6.2.0' });
    const b = await renderFor('mpi4py', { rocm: '6.2.0' }, '20250101');
    const c = await renderFor('mpi4py', { rocm: '6.2.4' });
    const d = await renderFor('mpi4py', { gpu_targets: 'gfx90a,gfx942' });
    // The date only names the EasyConfig; it does not decide the build.
    expect(b.definitionHash).toBe(a.definitionHash);
    expect(new Set([a.definitionHash, c.definitionHash, d.definitionHash]).size).toBe(3);
  });
  it('covers the files the example copies into the image', async () => {
    const a = await renderFor('mpi4py-cpu', {});
    expect(a.definitionHash).toMatch(/^[0-9a-f]{64}$/);
  });
});
