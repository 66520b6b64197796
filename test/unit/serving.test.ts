/**
 * Issue 30: "takes SERVER_PORT", "has served files" and "has sources" are
 * three facts. A variant with sources only needs no served directory; one
 * that declares served files and has none is told which files it lacks.
 */
import { InputError } from '../../src/errors';
import { badServerDir, servingPlan } from '../../src/fileserver/serving';
import type { RenderedVariant } from '../../src/recipe/render';
import type { ResolvedSource } from '../../src/recipe/sources';
import type { ServedFile } from '../../src/recipe/served';
import type { Recipe } from '../../src/recipe/types';

const SOURCE: ResolvedSource = {
  name: 'demo',
  kind: 'file',
  url: 'https://example.org/demo.tar.gz',
  sha256: 'a'.repeat(64),
  submodules: false,
  servedPath: `sources/sha256/${'a'.repeat(64)}`,
};
const recipe = (serverFiles?: string) =>
  ({ name: 'r', serverFiles, runtimeArgs: ['SERVER_PORT', 'SERVED_DIGEST'] }) as unknown as Recipe;
const variant = (served: ServedFile[], sources: ResolvedSource[]) =>
  ({ names: { stem: 'r-1.0' }, served, sources }) as unknown as RenderedVariant;

describe('servingPlan', () => {
  it('serves the sources of a variant that declares no served file, with no directory', () => {
    expect(servingPlan(recipe(), variant([], [SOURCE]))).toEqual({
      dir: undefined,
      dirNamedBy: undefined,
      serve: true,
    });
  });

  it('runs no server for a variant with neither (its SERVER_PORT is never used)', () => {
    expect(servingPlan(recipe(), variant([], [])).serve).toBe(false);
  });

  it("takes --server-files over the recipe's own, and says which named it", () => {
    expect(servingPlan(recipe('/r/server-files'), variant([], []), '/given')).toMatchObject({
      dir: '/given',
      dirNamedBy: '--server-files',
      serve: true,
    });
    expect(servingPlan(recipe('/r/server-files'), variant([], [])).dirNamedBy).toBe("recipe r's server_files");
  });

  it('refuses served files with no directory in one line naming them and their roles (exit 2)', () => {
    const served: ServedFile[] = [
      { file: 'cpe-24.03.tar', role: 'licensed' },
      { file: 'rocminfo', role: 'tool', path: '/opt/rocm/bin/rocminfo' },
    ];
    let caught: unknown;
    try {
      servingPlan(recipe(), variant(served, [SOURCE]));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as InputError).exitCode).toBe(2);
    expect((caught as Error).message).toBe(
      'r-1.0 declares served files cpe-24.03.tar (licensed), rocminfo (tool) and no directory holds them: give --server-files DIR',
    );
    expect((caught as Error).message).not.toMatch(/fetches licensed/);
  });

  it('names the directory by what named it when it is not there', () => {
    const plan = servingPlan(recipe('/r/server-files'), variant([], [SOURCE]));
    expect(badServerDir(plan, 'ENOENT').message).toBe(
      "recipe r's server_files /r/server-files: missing or not a directory (ENOENT)",
    );
  });
});
