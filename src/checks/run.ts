/**
 * `sifkit test`: the recipe's checks on one image, locally through the
 * engine or through Slurm; the results saved with the image, recorded in
 * the tree's ledger when it is staged there, and gated against the image
 * promoted for the same series.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, OperationError, RefusedError, type SifkitError } from '../errors';
import { commandLine } from '../emit/bash';
import { connectEngine } from '../engine/client';
import type { ImageEngine } from '../engine/engine';
import { loadRecipe, loadRecipeByName } from '../recipe/load';
import type { Recipe } from '../recipe/types';
import { readLedger, writeLedger } from '../tree/ledger';
import { mutate } from '../tree/mutate';
import { linkName, stemLink } from '../tree/links';
import type { Tree } from '../tree/root';
import { compareFigures, describeRegression, runGateSummary, worstRegression, type Regression } from './gate';
import type { CheckResult } from './judge';
import { runLocal } from './local';
import type { SlurmProfile } from '../recipe/testing';
import { slurmWithOverrides } from './profile';
import { latestPassing, readResults, runVerdict, saveRun, type TestRun } from './results';
import { mergeRuns } from '../validate/schemas/results';
import type { Processes } from '../util/processes';
import { realClock, type Clock } from '../util/clock';
import { runSlurm } from './slurm';
import { selectChecks } from './spec';
import type { TestTarget } from './target';

export interface TestOptions extends GateInputs {
  runner: 'local' | 'slurm';
  only?: string[];
  resultsDir: string;
  /** tree (GateInputs): also record the run in the tree's ledger. */
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

/** What the regression gate needs to know, from the command line or the pipeline file. */
export interface GateInputs {
  /** The opened tree: its promoted image for the series is the baseline (and the run is recorded in its ledger). */
  tree?: Tree;
  /** A results file to gate against instead. */
  baseline?: string;
  tolerance: number;
  /** false: --no-gate. */
  gate: boolean;
}

export interface Baseline {
  run: TestRun;
  image: string;
  source: string;
}

/**
 * The run the gate compares with: a results file, or the image the series'
 * link points at. Read before any check runs, so a missing tree or baseline
 * is refused before a job is submitted.
 */
export async function findBaseline(opts: GateInputs, stem: string, self: string): Promise<Baseline | undefined> {
  if (!opts.gate) return undefined;
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

/** The gate's verdict on a run's results, recorded in the run; undefined when there was nothing to compare with. */
export function judgeGate(results: CheckResult[], baseline: Baseline | undefined, opts: GateInputs): TestRun['gate'] {
  if (!opts.gate) return { verdict: 'off', tolerance: opts.tolerance, regressions: [] };
  if (!baseline) return undefined;
  const regressions = compareFigures(results, baseline.run.checks, opts.tolerance);
  return {
    verdict: regressions.length ? 'refused' : 'passed',
    tolerance: opts.tolerance,
    baseline: baseline.image,
    source: baseline.source,
    regressions,
  };
}

/**
 * The recipe whose checks `sifkit test` runs: `--recipe` (a name or a
 * directory), else the one the image's label names, looked up only in the
 * recipe directory.
 */
export async function recipeForTarget(target: TestTarget, recipeArg?: string): Promise<Recipe> {
  if (recipeArg) return loadRecipe(recipeArg);
  if (!target.recipe)
    throw new InputError('no-recipe', `cannot tell which recipe's checks to run for ${target.name}`, {
      hint: 'give --recipe NAME',
    });
  return loadRecipeByName(target.recipe, undefined, `label io.sifkit.recipe of ${target.name}`);
}

/** Runs `recipe`'s checks on `target`, the objects the caller holds (nothing is looked up again). */
export async function runTests(target: TestTarget, recipe: Recipe, opts: TestOptions): Promise<TestOutcome> {
  const checks = selectChecks(recipe.checks, opts.only, recipe.name);
  if (!checks.length) throw new InputError('no-checks', `recipe ${recipe.name} has no checks`);
  const profile = recipe.testing;
  // What can be refused is refused before a check runs: the tree, the baseline.
  const tree = opts.tree;
  const baseline = await findBaseline(opts, target.stem, target.name);
  const started = new Date((opts.clock ?? realClock).now());
  let results: CheckResult[];
  let jobId: string | undefined;
  let jobState: string | undefined;
  if (opts.runner === 'local') {
    if (!target.image)
      throw new InputError('no-image', `${target.sif ?? target.name} has no image in the engine to run locally`);
    const docker = opts.engine ?? (await connectEngine(opts.signal));
    results = await runLocal(docker, target.image, checks, profile.local, {
      signal: opts.signal,
      onCheck: opts.onCheck,
    });
  } else {
    const slurm = slurmWithOverrides(profile.slurm, opts.slurm);
    if (/\{sif\}/.test(slurm.container) && !target.sif)
      throw new InputError('no-sif', `the Slurm container command needs a SIF; give the .sif file as TARGET`, {
        hint: 'or set --container-cmd to run the image another way',
      });
    // Beside the tree when there is one, as its results are.
    const workdir = path.resolve(
      opts.workdir ??
        path.join(
          tree ? tree.jobs : path.join('.sifkit', 'slurm'),
          `${target.name.replace(/\.sif$/, '')}-${started.getTime()}`,
        ),
    );
    const r = await runSlurm(
      {
        name: `sifkit-test-${target.dockerhash}`,
        workdir,
        checks,
        profile: slurm,
        sif: target.sif,
        image: target.image,
      },
      { signal: opts.signal, onState: opts.onState, processes: opts.processes, clock: opts.clock },
    );
    results = r.results;
    jobId = r.jobId;
    jobState = r.state;
    results.forEach((x) => opts.onCheck?.(x));
  }
  const run = testRun({
    image: target.name,
    stem: target.stem,
    dockerhash: target.dockerhash,
    recipe: recipe.name,
    params: target.params,
    runner: opts.runner,
    jobId,
    jobState,
    started,
    finished: new Date((opts.clock ?? realClock).now()),
    checks: results,
    baseline,
    gate: opts,
  });
  let resultsFile: string;
  let recordedInTree = false;
  if (!tree) resultsFile = await saveRun(opts.resultsDir, run);
  else {
    // Against a tree both records change under its lock (two runs at once never lose one), the results file
    // first; the ledger then takes every run the file holds that it lacks, so a run a stopped command saved
    // in the file but never recorded goes in with the next (a stage takes them in the same way).
    const recorded = await mutate(tree, 'test', opts.signal, async () => {
      const file = await saveRun(opts.resultsDir, run);
      const e = await readLedger(tree, target.name);
      if (e) {
        e.tests = mergeRuns(e.tests, (await readResults(file))?.runs);
        await writeLedger(tree, e);
      }
      return {
        value: { file, inLedger: Boolean(e) },
        files: e ? [{ path: `tested-containers/${target.name}`, op: `test run ${runVerdict(run)}` }] : [],
      };
    });
    resultsFile = recorded.file;
    recordedInTree = recorded.inLedger;
  }
  return {
    run,
    resultsFile,
    baseline: baseline && { image: baseline.image, source: baseline.source },
    regressions: run.gate?.regressions ?? [],
    recordedInTree,
  };
}

/** What a test run is made of, wherever its checks ran (here, or in a Slurm job the executor followed). */
export interface RunInput extends Pick<
  TestRun,
  'image' | 'stem' | 'dockerhash' | 'recipe' | 'params' | 'runner' | 'jobId' | 'jobState' | 'checks'
> {
  started: Date;
  finished: Date;
  baseline: Baseline | undefined;
  gate: GateInputs;
}

/** The one place a TestRun is made: the gate judged, `passed` only when every check passed and the gate did not refuse. */
export function testRun(input: RunInput): TestRun {
  const run: TestRun = {
    image: input.image,
    stem: input.stem,
    dockerhash: input.dockerhash,
    recipe: input.recipe,
    params: input.params,
    runner: input.runner,
    host: os.hostname(),
    jobId: input.jobId,
    jobState: input.jobState,
    started: input.started.toISOString(),
    finished: input.finished.toISOString(),
    checks: input.checks,
    passed: false,
    gate: judgeGate(input.checks, input.baseline, input.gate),
  };
  run.passed = run.checks.every((r) => r.passed) && run.gate?.verdict !== 'refused';
  return run;
}

/**
 * The one failure of a run that did not pass: the gate's refusal (exit 3),
 * or the failed checks (exit 1); undefined for a run that passed.
 */
export function runFailure(run: TestRun, where: { resultsFile: string; jobDir?: string }): SifkitError | undefined {
  const verdict = runVerdict(run);
  if (verdict === 'refused') return gateError(run, path.dirname(where.resultsFile));
  if (verdict !== 'failed') return undefined;
  const failed = run.checks.filter((c) => !c.passed);
  return new OperationError(
    'tests-failed',
    `${failed.length} check(s) failed${run.jobId ? ` in job ${run.jobId}` : ''}: ${failed.map((c) => `${c.name} (${c.reason})`).join(', ')}`,
    { hint: `results in ${where.resultsFile}${where.jobDir ? `; the job's files in ${where.jobDir}` : ''}` },
  );
}

/** The refusal of a run the gate refused, naming its worst figure. */
export function gateError(run: TestRun, resultsDir: string): RefusedError {
  const g = run.gate!;
  const worst = worstRegression(g.regressions)!;
  return new RefusedError(
    'regression',
    `${runGateSummary(g)}: worst ${describeRegression(worst)}; the run is recorded as refused`,
    {
      hint: `${commandLine(['sifkit', 'report', '--results-dir', resultsDir])} shows the figures; a new test run, or one with --tolerance FRACTION or --no-gate, moves past it`,
    },
  );
}
