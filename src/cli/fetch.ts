import * as path from 'node:path';
import type { Command } from 'commander';
import { collect, humanSize, jsonDoc, table } from './output';
import { runCommand } from './run';
import { wholeNumber } from './stage-flags';
import {
  defaultSourceCache,
  fetchSources,
  loadRecipe,
  parseSets,
  readRecipeInputs,
  render,
  variantValues,
  type ResolvedSource,
} from '../index';

interface FetchFlags {
  set?: string[];
  matrix?: boolean;
  cache?: string;
  jobs?: string;
  json?: boolean;
}

export function registerFetch(program: Command): void {
  program
    .command('fetch')
    .description(
      'download the sources a recipe declares into the source cache, each checked against its sha256 (git: its commit)',
    )
    .argument('<recipe>', 'recipe name (in docker-defs/) or path')
    .option('--set <name=value>', 'set a parameter (repeatable)', collect)
    .option('--matrix', "the sources of every variant of the recipe's build matrix")
    .option('--cache <dir>', 'the source cache (default: $SIFKIT_SOURCE_CACHE, else sources/ in the state directory)')
    .option('--jobs <n>', 'downloads at once', '4')
    .option('--json', 'print one JSON document on stdout')
    .action(async (recipeRef: string, flags: FetchFlags) => {
      process.exitCode = await runCommand(async (io) => {
        const jobs = wholeNumber(flags.jobs, '--jobs', 1, 64, 'bad-jobs') ?? 4;
        const recipe = await loadRecipe(recipeRef);
        const inputs = await readRecipeInputs(recipe);
        const wanted: ResolvedSource[] = [];
        for (const values of variantValues(recipe, parseSets(flags.set ?? []), Boolean(flags.matrix))) {
          wanted.push(...(await render(recipe, { values, inputs })).sources);
        }
        const cache = flags.cache ? path.resolve(flags.cache) : defaultSourceCache();
        const got = await fetchSources(wanted, {
          cache,
          recipeDir: recipe.dir,
          jobs,
          signal: io.signal,
          onProgress: (line) => io.stderr(`sifkit: fetch: ${line}\n`),
        });
        if (io.json) io.stdout(jsonDoc({ ok: true, cache, sources: got }));
        else if (got.length === 0) io.stderr(`sifkit: recipe ${recipe.name} declares no sources these variants use\n`);
        else
          io.stdout(
            table(
              got.map((s) => [
                s.name,
                s.how,
                humanSize(s.bytes),
                s.sha256 ? s.sha256.slice(0, 16) : '',
                s.commit ? s.commit.slice(0, 12) : '',
                s.url,
              ]),
              [
                'source',
                'how',
                { header: 'size', align: 'right' },
                'sha256',
                'commit',
                { header: 'url', shrink: true },
              ],
            ),
          );
      }, flags);
    });
}
