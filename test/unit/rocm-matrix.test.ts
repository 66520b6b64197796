import { loadRecipe, readFragments } from '../../src/recipe/load';
import { variantValues } from '../../src/recipe/params';
import { renderVariant, type RenderedVariant } from '../../src/recipe/render';
import { compareVersions } from '../../src/recipe/template';
import type { Recipe } from '../../src/recipe/types';
import { TEST_PROVENANCE } from '../support/recipes';

/**
 * Issue 18.2: ROCm 5.6-6.2 x Python 3.10-3.12 x mpi4py 3.1.4-3.1.6, less the
 * exclusion AMD's recipes make (mpi4py before 3.1.5 does not build for
 * Python 3.12), renders and lints clean. The time is bench/render.bench.ts's.
 */
// 41 variants rendered and linted (once each): slow on a loaded machine.
jest.setTimeout(60_000);

let recipe: Recipe;
let fragments: Array<[string, string]>;
beforeAll(async () => {
  recipe = await loadRecipe('mpi4py');
  fragments = await readFragments(recipe);
});

// Each variant rendered (and linted) once for every test here: rendering is what is slow.
const rendered = new Map<string, RenderedVariant>();
const render = (values: Record<string, string>): RenderedVariant => {
  const key = JSON.stringify(values);
  const hit = rendered.get(key);
  if (hit) return hit;
  const r = renderVariant({ recipe, values, fragments, files: {}, provenance: TEST_PROVENANCE, date: '20241007' });
  rendered.set(key, r);
  return r;
};

describe('the mpi4py version matrix', () => {
  it('covers every ROCm x Python x mpi4py combination but the excluded ones', () => {
    const rows = variantValues(recipe, {}, true);
    const key = (r: Record<string, string>) => `${r.rocm.split('.').slice(0, 2).join('.')}/${r.python}/${r.mpi4py}`;
    const have = new Set(rows.map(key));
    for (const rocm of ['5.6', '5.7', '6.0', '6.1', '6.2']) {
      for (const python of ['3.10', '3.11', '3.12']) {
        for (const mpi4py of ['3.1.4', '3.1.5', '3.1.6']) {
          const excluded = python === '3.12' && mpi4py === '3.1.4';
          expect([`${rocm}/${python}/${mpi4py}`, have.has(`${rocm}/${python}/${mpi4py}`)]).toEqual([
            `${rocm}/${python}/${mpi4py}`,
            !excluded,
          ]);
        }
      }
    }
    expect(new Set(rows.map((r) => `${r.rocm}/${r.python}/${r.mpi4py}`)).size).toBe(rows.length);
  });

  it('renders and lints without a single problem, each variant its own definition', () => {
    const rows = variantValues(recipe, {}, true);
    const hashes = new Set<string>();
    for (const values of rows) {
      const r = render(values);
      expect([r.names.stem, r.warnings]).toEqual([r.names.stem, []]);
      expect(r.dockerfile).not.toMatch(/\{\{/);
      hashes.add(r.definitionHash);
    }
    expect(hashes.size).toBe(rows.length);
  });

  it("gives ROCm 6 what AMD's 6.x recipes give it, and ROCm 5.4 what LUMI built", () => {
    for (const values of variantValues(recipe, {}, true)) {
      const text = render(values).dockerfile;
      const six = compareVersions(values.rocm, '6') >= 0;
      const at = values.rocm;
      expect([at, text.includes('sources/git/72ea1f14cd454f7f2aa22a0866a6bafeed632532-recursive.tar')]).toEqual([
        at,
        six,
      ]);
      expect([at, text.includes(`pip install --no-cache-dir cupy==${values.cupy}`)]).toEqual([at, !six]);
      expect([at, text.includes('CFLAGS="-I$MPICH_PATH/include -D__HIP_PLATFORM_AMD__=1"')]).toEqual([at, six]);
      expect([at, text.includes('g++-12 /tmp/amdgpu-arch.cpp')]).toEqual([at, six]);
      // AMD removed the libtbb12 repository again (sfantao/LUMI-containers 5e0fe91).
      expect([at, text.includes('devel:/libraries:/c_c++')]).toEqual([at, false]);
      expect([at, text.includes('omniperf omnitrace')]).toEqual([at, compareVersions(values.rocm, '6.2.4') >= 0]);
      // The served tools and the amdgpu-arch source, fetched explicitly so the render-time check can read them.
      expect([at, text.includes('curl -fsSL -o rocminfo "http://127.0.0.1:${SERVER_PORT}/rocminfo"')]).toEqual([
        at,
        true,
      ]);
      expect([at, text.includes('ln -sf /usr/lib64/libstdc++.so* .')]).toEqual([
        at,
        compareVersions(values.rocm, '5.6') < 0,
      ]);
      expect([at, text.includes('--usecase=hiplibsdk,rocm')]).toEqual([at, compareVersions(values.rocm, '5.6') < 0]);
      const sp5 = compareVersions(values.bci, '15.5') >= 0;
      expect([at, text.includes('libsystemd0-249.16 libudev1-249.16')]).toEqual([
        at,
        sp5 && compareVersions(values.rocm, '5.6') >= 0,
      ]);
      expect([at, /gcc12 gcc12-c\+\+ gcc12-fortran/.test(text), text.includes('libjansson4 libnl3-200')]).toEqual([
        at,
        sp5,
        sp5,
      ]);
      expect([at, text.includes('ENV RCCL_DEBUG="0"')]).toEqual([at, true]);
      expect(text).toContain(`FROM registry.suse.com/bci/bci-base:${values.bci} AS base\n`);
      expect(values.bci).toMatch(/^15\.\d+\.\d+\.\d+/);
    }
  });
});
