/**
 * A run's state lives in its context and nowhere else: src/pipeline keeps
 * no module-level mutable state, two contexts share nothing, the engines
 * are connected once each and spread over the variants in turn, and retire
 * runs once per run whatever the number of variants.
 */
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { loadRecipe } from '../../src/recipe/load';
import type { Recipe } from '../../src/recipe/types';
import { engineFor } from '../../src/pipeline/engines';
import { STAGES } from '../../src/pipeline/registry';
import { runPipeline } from '../../src/pipeline/runner';
import { recipeInputs } from '../../src/pipeline/stages';
import { openTree } from '../../src/tree/root';
import { defOf, fakeContext, fakeEngines, fakeStage, variants } from '../support/pipeline';

const PIPELINE = path.join(__dirname, '..', '..', 'src', 'pipeline');

/** Top-level `let`/`var`, and `new` evaluated when the module loads (not inside a function or class body). */
function moduleState(file: string): string[] {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const where = (n: ts.Node) => `${path.basename(file)}:${src.getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
  const scan = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) || ts.isClassLike(n)) return;
    if (ts.isNewExpression(n)) found.push(`${where(n)} new ${n.expression.getText()}`);
    ts.forEachChild(n, scan);
  };
  for (const st of src.statements) {
    if (ts.isVariableStatement(st) && !(st.declarationList.flags & ts.NodeFlags.Const))
      found.push(`${where(st)} ${st.declarationList.getText().split(/\s/)[0]}`);
    if (!ts.isClassDeclaration(st) && !ts.isFunctionDeclaration(st)) scan(st);
  }
  return found;
}

let recipe: Recipe;
beforeAll(async () => {
  recipe = await loadRecipe('mpi4py');
});

describe('the run state', () => {
  it('has no module-level mutable state in src/pipeline', () => {
    const files = readdirSync(PIPELINE).filter((f) => f.endsWith('.ts'));
    expect(files).toEqual(expect.arrayContaining(['engines.ts', 'slots.ts', 'stages.ts', 'release-stages.ts']));
    expect(files.flatMap((f) => moduleState(path.join(PIPELINE, f)))).toEqual([]);
  });

  it('finds module-level state where there is some (the check itself)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-state-'));
    const file = path.join(dir, 'x.ts');
    await fs.writeFile(
      file,
      'let n = 0;\nconst m = new WeakMap<object, number>();\nexport const f = () => new Map();\nclass C { s = new Set(); }\n',
    );
    expect(moduleState(file)).toEqual(['x.ts:1 let', 'x.ts:2 new WeakMap']);
    await fs.rm(dir, { recursive: true });
  });

  it('gives each context its own state', async () => {
    const a = fakeContext(recipe, variants(2));
    const b = fakeContext(recipe, variants(2));
    for (const k of Object.keys(a.run) as Array<keyof typeof a.run>)
      expect([k, a.run[k] === b.run[k]]).toEqual([k, false]);
    // The recipe's inputs: read once per run, again for another run.
    expect(recipeInputs(a)).toBe(recipeInputs(a));
    expect(recipeInputs(b)).not.toBe(recipeInputs(a));
    await Promise.all([recipeInputs(a), recipeInputs(b)]);
  });

  it('shares nothing between two runs in one process', async () => {
    const made: string[] = [];
    const stage = fakeStage('once', async (c) => {
      await c.run.recipeInputs.get(async () => {
        made.push(c.date);
        return { fragments: [], context: [], files: {} };
      });
    });
    const first = fakeContext(recipe, variants(3));
    const second = { ...fakeContext(recipe, variants(3)), date: '20261202' };
    await runPipeline(defOf('once'), first, { once: stage }, { renderer: 'silent', jobs: 3 });
    await runPipeline(defOf('once'), second, { once: stage }, { renderer: 'silent', jobs: 3 });
    expect(made).toEqual(['20261201', '20261202']);
  });

  it('spreads variants over the --engines addresses in turn and connects each once', async () => {
    const { effects, connects } = fakeEngines();
    const ctx = fakeContext(recipe, variants(5), { engines: ['tcp://a:2375', 'tcp://b:2375'] }, effects);
    const got = await Promise.all([...ctx.variants, ...ctx.variants].map((v) => engineFor(ctx, v)));
    expect(ctx.variants.map((v) => v.results.engine)).toEqual([
      'tcp://a:2375',
      'tcp://b:2375',
      'tcp://a:2375',
      'tcp://b:2375',
      'tcp://a:2375',
    ]);
    expect(connects).toEqual(['tcp://a:2375', 'tcp://b:2375']);
    expect(got[0]).toBe(got[2]);
    expect(got[0]).not.toBe(got[1]);
  });

  it('connects the default engine once without --engines', async () => {
    const { effects, connects } = fakeEngines();
    const ctx = fakeContext(recipe, variants(3), {}, effects);
    await Promise.all(ctx.variants.map((v) => engineFor(ctx, v)));
    await engineFor(ctx);
    expect(connects).toEqual([undefined]);
    expect(ctx.variants.map((v) => v.results.engine)).toEqual(['default', 'default', 'default']);
  });

  it('retires once per run whatever the number of variants', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-tree-'));
    try {
      const ctx = fakeContext(recipe, variants(4), { tree: await openTree(root, true) });
      await runPipeline(defOf('retire'), ctx, STAGES, { renderer: 'silent', jobs: 4 });
      expect(ctx.variants.map((v) => v.error)).toEqual([undefined, undefined, undefined, undefined]);
      const first = ctx.variants[0].results.retire;
      expect(first?.applied).toBe(false);
      // One retire result, the same object on every variant: it ran once.
      for (const v of ctx.variants) expect(v.results.retire).toBe(first);
      const again = fakeContext(recipe, variants(1), { tree: await openTree(root, true) });
      await runPipeline(defOf('retire'), again, STAGES, { renderer: 'silent', jobs: 1 });
      expect(again.variants[0].results.retire).not.toBe(first);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
