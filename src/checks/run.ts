/**
 * `sifkit test`: the recipe's checks on one image, locally through the
 * engine or through Slurm; the results saved with the image, recorded in
 * the tree's ledger when it is staged there, and gated against the image
 * promoted for the same series.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, RefusedError } from '../errors';
import { connectEngine } from '../engine/client';
import type { ImageEngine } from '../engine/engine';
import { loadRecipe, loadRecipeByName } from '../recipe/load';
import type { Recipe } from '../recipe/types';
import { readLedger, writeLedger } from '../tree/ledger';
import { mutate } from '../tree/mutate';
import { linkName, stemLink } from '../tree/links';
import type { Tree } from '../tree/root';
import { compareFigures, type Regression } from './gate';
import type { CheckResult } from './judge';
import { runLocal } from './local';
import { parseProfile, slurmWithOverrides, type SlurmProfile } from './profile';
import { latestPassing, readResults, saveRun, type TestRun } from './results';
import type { Processes } from '../util/processes';
import { realClock, type Clock } from '../util/clock';
import { runSlurm } from './slurm';
import { parseChecks, selectChecks } from './spec';
import type { TestTarget } from './target';

export interface TestOptions {
  runner: 'local' | 'slurm';
  only?: string[];
  resultsDir: string;
  /** The opened tree: record the run in the ledger and gate against the promoted image. */
  tree?: Tree;
  baseline?: string;
  tolerance: number;
  gate: boolean;
  workdir?: string;
  slurm?: Partial<SlurmProfile>;
  signal?: AbortSignal;
  /** The engine with the image (default: DOCKER_HOST or the local socket). */
  engine?: ImageEngine;
  /** How the Slurm runner runs sbatch/squeue/sacct and waits (default: the host's). */
  processes?: Processes;
  clock?: Clock;
  onCheck?: (r: CheckResult) => void;
  onState?: (s: string) => void;
}

export interface TestOutcome {
  run: TestRun;
  resultsFile: string;
  baseline?: { image: string; source: string };
  regressions: Regression[];
  recordedInTree: boolean;
}

/** The run the gate compares with: a results file, or the image the series' link points at. */
async function findBaseline(opts: TestOptions, stem: string, self: string): Promise<{ run: TestRun; image: string; source: string } | undefined> {
  if (opts.baseline) {
    const doc = await readResults(opts.baseline);
    const run = latestPassing(doc?.runs);
    if (!run) throw new InputError('no-baseline', `${opts.baseline} holds no passing run to compare with`);
    return { run, image: run.image, source: opts.baseline };
  }
  if (!opts.tree) return undefined;
  const image = (await stemLink(opts.tree, stem).catch(() => undefined))?.image;
  if (!image || image === self) return undefined;
  const entry = await readLedger(opts.tree, image);
  const run = latestPassing(entry?.tests);
  return run ? { run, image, source: `sif-images/${linkName(stem)}` } : undefined;
}

/**
 * The recipe whose checks `sifkit test` runs: `--recipe` (a name or a
 * directory), else the one the image's label names, looked up only in the
 * recipe directory.
 */
export async function recipeForTarget(target: TestTarget, recipeArg?: string): Promise<Recipe> {
  if (recipeArg) return loadRecipe(recipeArg);
  if (!target.recipe) throw new InputError('no-recipe', `cannot tell which recipe's checks to run for ${target.name}`, { hint: 'give --recipe NAME' });
  return loadRecipeByName(target.recipe, undefined, `label io.sifkit.recipe of ${target.name}`);
}

/** Runs `recipe`'s checks on `target`, the objects the caller holds (nothing is looked up again). */
export async function runTests(target: TestTarget, recipe: Recipe, opts: TestOptions): Promise<TestOutcome> {
  const checks = selectChecks(parseChecks(recipe.checks, recipe.name), opts.only, recipe.name);
  if (!checks.length) throw new InputError('no-checks', `recipe ${recipe.name} has no checks`);
  const profile = parseProfile(recipe.testing, recipe.name);
  const started = new Date((opts.clock ?? realClock).now());
  let results: CheckResult[];
  let jobId: string | undefined;
  let jobState: string | undefined;
  if (opts.runner === 'local') {
    if (!target.image) throw new InputError('no-image', `${target.sif ?? target.name} has no image in the engine to run locally`);
    const docker = opts.engine ?? (await connectEngine(opts.signal));
    results = await runLocal(docker, target.image, checks, profile.local, { signal: opts.signal, onCheck: opts.onCheck });
  } else {
    const slurm = slurmWithOverrides(profile.slurm, opts.slurm);
    if (/\{sif\}/.test(slurm.container) && !target.sif) throw new InputError('no-sif', `the Slurm container command needs a SIF; give the .sif file as TARGET`, { hint: 'or set --container-cmd to run the image another way' });
    const workdir = path.resolve(opts.workdir ?? path.join('.sifkit', 'slurm', `${target.name.replace(/\.sif$/, '')}-${started.getTime()}`));
    const r = await runSlurm({ name: `sifkit-test-${target.dockerhash}`, workdir, checks, profile: slurm, sif: target.sif, image: target.image }, { signal: opts.signal, onState: opts.onState, processes: opts.processes, clock: opts.clock });
    results = r.results;
    jobId = r.jobId;
    jobState = r.state;
    results.forEach((x) => opts.onCheck?.(x));
  }
  const run: TestRun = {
    image: target.name, stem: target.stem, dockerhash: target.dockerhash, recipe: recipe.name, runner: opts.runner, host: os.hostname(),
    jobId, jobState, started: started.toISOString(), finished: new Date((opts.clock ?? realClock).now()).toISOString(), passed: results.every((r) => r.passed), checks: results,
  };
  const resultsFile = await saveRun(opts.resultsDir, run);
  let recordedInTree = false;
  const tree = opts.tree;
  if (tree) {
    if (await readLedger(tree, target.name)) {
      await mutate(tree, 'test', opts.signal, async () => {
        const e = await readLedger(tree, target.name);
        if (e) {
          e.tests = [...(e.tests ?? []), run];
          await writeLedger(tree, e);
        }
        return { value: undefined, files: [{ path: `tested-containers/${target.name}`, op: `test run ${run.passed ? 'passed' : 'failed'}` }] };
      });
      recordedInTree = true;
    }
  }
  const baseline = opts.gate ? await findBaseline(opts, target.stem, target.name) : undefined;
  const regressions = baseline ? compareFigures(results, baseline.run.checks, opts.tolerance) : [];
  return { run, resultsFile, baseline: baseline && { image: baseline.image, source: baseline.source }, regressions, recordedInTree };
}

export function gateError(o: TestOutcome, tolerance: number): RefusedError {
  const worst = [...o.regressions].sort((a, b) => b.worseBy - a.worseBy)[0];
  return new RefusedError('regression', `${o.regressions.length} figure(s) worse than ${o.baseline?.image} by more than ${(tolerance * 100).toFixed(0)}%: worst ${worst.check} at ${worst.size} B, ${worst.kind} ${worst.baseline} → ${worst.value} (${(worst.worseBy * 100).toFixed(0)}% worse)`, { hint: 'look at sifkit report; --tolerance sets the margin' });
}
