/**
 * The candidates that live on disk: recipe names, a recipe's parameters,
 * the tree's images. Each reaches into its own library module when asked,
 * not through index.ts: loading the whole library would cost a TAB more
 * than a second (the layering test names these imports as the exception).
 * Every name read from disk passes sifkit's name rule before it becomes a
 * candidate: a candidate is one line, and no file's name becomes anything else.
 */
import type { CompletionSources } from './complete';

export const diskSources: CompletionSources = {
  async recipes() {
    const [{ listRecipes, defaultDefsRoot }, { isValidName }] = await Promise.all([
      import('../recipe/list'),
      import('../validate/names'),
    ]);
    return (await listRecipes(defaultDefsRoot())).filter((r) => isValidName('recipe', r));
  },
  async parameters(recipe) {
    const [{ loadRecipe }, { isValidName }] = await Promise.all([
      import('../recipe/load'),
      import('../validate/names'),
    ]);
    const r = await loadRecipe(recipe);
    return Object.fromEntries(
      r.parameters
        .filter((p) => isValidName('version', p.name))
        .map((p) => [p.name, (p.values ?? [p.default]).filter((v) => isValidName('version', v))]),
    );
  },
  async images(root) {
    const [{ openTree, resolveRoot }, { ledgerNames }, { isValidName }] = await Promise.all([
      import('../tree/root'),
      import('../tree/ledger-names'),
      import('../validate/names'),
    ]);
    const names = await ledgerNames((await openTree(resolveRoot(root), false)).ledger);
    return names.filter((n) => isValidName('sif file', n)).sort();
  },
};
