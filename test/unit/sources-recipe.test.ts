/**
 * Declared sources, the pure part: the recipe schema, resolution per
 * parameter value, the `{{ source }}` reference, the label, the definition
 * hash, and the lint rule that refuses any download no source declares.
 */
import { loadRecipe, readFragments } from '../../src/recipe/load';
import { resolveValues } from '../../src/recipe/params';
import { renderVariant } from '../../src/recipe/render';
import { parseRecipe } from '../../src/recipe/schema';
import { rawDownloads } from '../../src/recipe/lint';
import { parseDockerfile } from '../../src/recipe/parsed-dockerfile';
import { sourcesLabel, resolveSource } from '../../src/recipe/sources';
import type { Recipe } from '../../src/recipe/types';
import { tinyRecipeText, TEST_PROVENANCE } from '../support/recipes';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function recipeText(sources: string, fragmentText = ''): string {
  void fragmentText;
  return tinyRecipeText('tiny', sources);
}

function render(recipe: Recipe, fragment: string, values: Record<string, string> = {}) {
  return renderVariant({
    recipe,
    values: resolveValues(recipe, values),
    fragments: [['tiny/a.docker', fragment]],
    files: {},
    provenance: TEST_PROVENANCE,
    date: '20260101',
  });
}

const TABLE = `sources:\n  lib:\n    url: https://example.org/lib-{{ v }}.tar.gz\n    by: v\n    sha256:\n      1.0.0: ${A}\n      2.0.0: ${B}\n      3.0.0: unverified`;
const FRAGMENT =
  'FROM scratch\nARG SERVER_PORT\nRUN set -eux ; \\\n  {{ source "lib" "/tmp/lib.tgz" }} ; \\\n  tar -xf /tmp/lib.tgz\n';

describe('the sources schema', () => {
  it.each([
    ['a short digest', 'sources:\n  x: { url: "https://e.org/x", sha256: abc }', /sha256.*64 lower-case hex/],
    ['no location', `sources:\n  x: { sha256: ${A} }`, /exactly one of url, git or path/],
    [
      'two locations',
      `sources:\n  x: { url: "https://e.org/x", path: x, sha256: ${A} }`,
      /exactly one of url, git or path/,
    ],
    ['git without its commit', `sources:\n  x: { git: "https://e.org/x", sha256: ${A} }`, /needs its commit/],
    ['a table without by', `sources:\n  x: { url: "https://e.org/x", sha256: { 1.0.0: ${A} } }`, /needs `by`/],
    ['an ftp URL', `sources:\n  x: { url: "ftp://e.org/x", sha256: ${A} }`, /http\(s\) URL/],
    [
      'a by naming no parameter',
      `sources:\n  x: { url: "https://e.org/x", by: w, sha256: { 1.0.0: ${A} } }`,
      /unknown parameter "?w/,
    ],
    [
      'a URL naming no parameter',
      `sources:\n  x: { url: "https://e.org/{{ w }}", sha256: ${A} }`,
      /unknown parameter "?w/,
    ],
    ['a path leaving the recipe', `sources:\n  x: { path: ../x, sha256: ${A} }`, /inside the recipe directory/],
  ])('refuses %s in one line', (_what, sources, message) => {
    let err: unknown;
    try {
      parseRecipe(recipeText(sources), '/defs/tiny', 'tiny/recipe.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });

  it('refuses sources in a recipe that takes no file server port', () => {
    const text = recipeText(TABLE).replace('runtime_args: [SERVER_PORT]', 'runtime_args: []');
    expect(() => parseRecipe(text, '/defs/tiny', 'tiny/recipe.yaml')).toThrow(/runtime_args must include SERVER_PORT/);
  });
});

describe('rendering a source reference', () => {
  const recipe = parseRecipe(recipeText(TABLE), '/defs/tiny', 'tiny/recipe.yaml');

  it('renders the fetch from the file server by digest, checked again in the build, and lists the source', () => {
    const r = render(recipe, FRAGMENT);
    expect(r.dockerfile).toContain(
      `curl -fsS -o '/tmp/lib.tgz' "http://127.0.0.1:\${SERVER_PORT}/sources/sha256/${A}" ; echo '${A}  /tmp/lib.tgz' | sha256sum -c --quiet -`,
    );
    expect(r.sources).toEqual([
      expect.objectContaining({ name: 'lib', url: 'https://example.org/lib-1.0.0.tar.gz', sha256: A }),
    ]);
    expect(r.labels['io.sifkit.sources']).toBe(`lib@sha256:${A}`);
  });

  it("takes the digest of the variant's version, and a new digest is a new definition hash", () => {
    const one = render(recipe, FRAGMENT);
    const two = render(recipe, FRAGMENT, { v: '2.0.0' });
    expect(two.sources[0]).toMatchObject({ url: 'https://example.org/lib-2.0.0.tar.gz', sha256: B });
    expect(two.definitionHash).not.toBe(one.definitionHash);
  });

  it('keeps the definition hash when only the URL moves (same bytes, same image)', () => {
    const moved = parseRecipe(
      recipeText(TABLE.replace('example.org', 'mirror.example.net')),
      '/defs/tiny',
      'tiny/recipe.yaml',
    );
    expect(render(moved, FRAGMENT).definitionHash).toBe(render(recipe, FRAGMENT).definitionHash);
  });

  it('renders an unverified source (so render and lint work) and marks it', () => {
    const r = render(recipe, FRAGMENT, { v: '3.0.0' });
    expect(r.sources[0].sha256).toBeUndefined();
    expect(r.labels['io.sifkit.sources']).toBe('lib@unverified');
    expect(r.dockerfile).toContain('/sources/unverified/lib"');
  });

  it('names the version a table has no row for', () => {
    const withV = parseRecipe(
      recipeText(TABLE).replace('v: { type: version, default: 1.0.0 }', 'v: { type: version, default: 4.0.0 }'),
      '/defs/tiny',
      'tiny/recipe.yaml',
    );
    expect(() => render(withV, FRAGMENT)).toThrow(/source lib has no sha256 for v=4\.0\.0/);
  });

  it('refuses an undeclared source name and a path that would need quoting', () => {
    expect(() => render(recipe, FRAGMENT.replace('"lib"', '"other"'))).toThrow(/names no declared source/);
    expect(() => render(recipe, FRAGMENT.replace('/tmp/lib.tgz"', '/tmp/$(id).tgz"'))).toThrow(
      /must be letters, digits/,
    );
  });

  it('labels git sources by commit', () => {
    const git = parseRecipe(
      recipeText(
        `sources:\n  fork:\n    git: https://example.org/fork\n    commit: ${'1'.repeat(40)}\n    submodules: 'true'\n    sha256: unverified`,
      ),
      '/defs/tiny',
      'tiny/recipe.yaml',
    );
    const src = resolveSource(git, 'fork', { v: '1.0.0' }, 'x');
    expect(src.servedPath).toBe(`sources/git/${'1'.repeat(40)}-recursive.tar`);
    expect(sourcesLabel([src])).toBe(`fork@git:${'1'.repeat(40)}`);
  });
});

describe('the lint rule: no download no source declares', () => {
  const recipe = parseRecipe(recipeText(TABLE), '/defs/tiny', 'tiny/recipe.yaml');
  it.each([
    [
      'curl of a URL',
      'RUN curl -fsSL -o x.tgz https://example.org/x.tgz',
      /curl downloads https:\/\/example\.org\/x\.tgz, which no source declares/,
    ],
    [
      'wget in a chain',
      'RUN set -eux ; cd /tmp && wget -q http://example.org/y',
      /wget downloads http:\/\/example\.org\/y/,
    ],
    ['curl of a variable', 'RUN curl -o x "$URL"', /curl downloads from a URL sifkit cannot read/],
    [
      'git clone',
      'RUN git clone --recursive https://github.com/ROCm/cupy /opt/c',
      /git clone downloads https:\/\/github\.com\/ROCm\/cupy/,
    ],
    [
      'pip install of a URL',
      'RUN python -m pip install git+https://example.org/p.git',
      /pip install downloads git\+https/,
    ],
    ['ADD of a URL', 'ADD https://example.org/z.tgz /z.tgz', /ADD downloads https:\/\/example\.org\/z\.tgz/],
    [
      'a continued RUN',
      'RUN set -eux ; \\\n  cd / ; \\\n  curl -fsSL -o o.tgz https://example.org/o.tgz',
      /curl downloads https:\/\/example\.org\/o\.tgz/,
    ],
  ])('refuses %s, naming the fragment', (_what, step, message) => {
    const problems = rawDownloads(parseDockerfile(`# ---- tiny/a.docker ----\nFROM scratch\n${step}\n`));
    expect(problems.map((p) => p.message)).toEqual([expect.stringMatching(message)]);
    expect(problems[0].message).toMatch(/^tiny\/a\.docker: /);
    expect(() => render(recipe, `FROM scratch\n${step}\n`)).toThrow(/undeclared|which no source declares/);
  });

  it.each([
    ['the file server', 'RUN curl -fsSL -o /cpe.tar "http://127.0.0.1:${SERVER_PORT}/cpe-${CPE_VERSION}.tar"'],
    ['pip by name', 'RUN pip install --no-cache-dir wheel numpy'],
    ['a local wheel', 'RUN pip install --no-cache-dir /opt/wheels/mpi4py-*.whl'],
    ['a URL in an echo', 'RUN echo "see https://example.org" > /README'],
  ])('lets %s pass', (_what, step) => {
    expect(rawDownloads(parseDockerfile(`FROM scratch\n${step}\n`))).toEqual([]);
  });
});

describe("LUMI's recipe", () => {
  it('downloads nothing undeclared in any variant of its matrix, and pins every source it uses', async () => {
    const recipe = await loadRecipe('mpi4py');
    const fragments = await readFragments(recipe);
    const seen = new Map<string, string>();
    for (const row of recipe.matrix) {
      const r = renderVariant({
        recipe,
        values: resolveValues(recipe, row),
        fragments,
        files: {},
        provenance: TEST_PROVENANCE,
        date: '20260101',
      });
      expect(rawDownloads(r.parsed)).toEqual([]);
      for (const s of r.sources) seen.set(`${s.name} ${s.url}`, s.sha256 ?? s.commit ?? 'unverified');
    }
    const names = [...seen.keys()].map((k) => k.split(' ')[0]);
    expect(new Set(names)).toEqual(new Set(['miniconda', 'mpi4py', 'osu', 'cupy-rocm']));
    expect(seen.get('cupy-rocm https://github.com/ROCm/cupy')).toBe('72ea1f14cd454f7f2aa22a0866a6bafeed632532');
    expect(seen.get('osu https://mvapich.cse.ohio-state.edu/download/mvapich/osu-micro-benchmarks-7.2.tar.gz')).toMatch(
      /^[0-9a-f]{64}$/,
    );
  });
});
