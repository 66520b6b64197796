/**
 * `release --dry-run` (and `run --dry-run`): the build plan of the
 * variants, nothing built. Which engine builds each variant, what it takes
 * from an earlier variant's build there, and the matrix's steps against
 * its distinct ones.
 */
import * as path from 'node:path';
import type { CommandIO } from './run';
import { jsonDoc, table } from './output';
import { checkRecipeFlags } from './pipeline-run';
import { loadRecipe, newContext, parseSets, planRun, render, variantValues, ymd, type BuildPlan } from '../index';

export interface PlanFlags {
  set?: string[];
  matrix?: boolean;
  date?: string;
  engines?: string[];
  /** --server-files: the plan keys the fetching steps by its digest, as the builds will. */
  serverFiles?: string;
  /** --check: refused here as a run would refuse it. */
  only?: string[];
}

function engineName(address: string): string {
  return address || 'default';
}

/** The plan as people read it: a row per variant, a row per engine, the totals. */
export function planText(plan: BuildPlan, stems: string[]): string {
  const variants = table(
    plan.variants.map((v) => [
      stems[v.index],
      engineName(v.engine),
      String(v.steps - v.shared),
      String(v.shared),
      String(v.cached),
      v.after === undefined ? '-' : stems[v.after],
      v.move ? `${v.move.steps} from ${engineName(v.move.from)}` : '-',
    ]),
    ['variant', 'engine', 'steps to run', 'steps shared', 'of them cached', 'after', 'moved (save/load)'],
  );
  const engines = table(
    plan.engines.map((e) => [
      engineName(e.engine),
      String(e.variants.length),
      String(e.run),
      String(e.heavy),
      String(e.cached),
      String(e.moved),
    ]),
    ['engine', 'variants', 'steps to run', 'of them RUN/COPY/ADD', 'cached before the run', 'moved here'],
  );
  const ratio = (a: number, b: number) => (b ? (a / b).toFixed(2) : '-');
  const served = plan.served?.digest
    ? `served files: digest ${plan.served.digest.slice(0, 12)}, port ${plan.served.port} (SERVED_DIGEST, SERVER_PORT of every build)\n`
    : plan.served?.assumed
      ? `served files: assumed: ${plan.served.assumed}\n`
      : '';
  return (
    `${variants}\n${engines}\n${served}` +
    `steps: ${plan.steps} in the definitions, ${plan.distinct} distinct, ${plan.executed} to run (${ratio(plan.executed, plan.distinct)} of distinct); ` +
    `RUN/COPY/ADD: ${plan.distinctHeavy} distinct, ${plan.executedHeavy} to run (${ratio(plan.executedHeavy, plan.distinctHeavy)})\n`
  );
}

export async function showBuildPlan(recipeRef: string, flags: PlanFlags, io: CommandIO): Promise<void> {
  const recipe = await loadRecipe(recipeRef);
  const values = variantValues(recipe, parseSets(flags.set ?? []), Boolean(flags.matrix));
  checkRecipeFlags(recipe, flags.date, flags.only);
  const ctx = newContext({
    recipe,
    values,
    signal: io.signal,
    options: { engines: flags.engines, serverFiles: flags.serverFiles ? path.resolve(flags.serverFiles) : undefined },
    date: flags.date ?? ymd(new Date()),
  });
  // Each variant rendered here first, so a bad one is its one-line error rather than left out of the plan.
  for (const v of ctx.variants) v.rendered = await render(recipe, { values: v.values, date: ctx.date });
  const stems = ctx.variants.map((v) => v.rendered!.names.stem);
  const plan = await planRun(ctx);
  if (io.json) io.stdout(jsonDoc({ ok: true, recipe: recipe.name, dryRun: true, plan: { ...plan, stems } }));
  else io.stdout(planText(plan, stems));
}
