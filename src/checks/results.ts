/**
 * Test runs kept with the image: a results file per image (beside the
 * work, by default `.sifkit/test-results/<sif name>.json`) and, once the
 * image is in the tree, its ledger record.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { z } from 'zod';
import { errnoCode, isSifkitError } from '../errors';
import { readRegularFile, writeFileAtomic } from '../util/files';
import { treeAt } from '../tree/names';
import { parseJsonDocument } from '../validate/schema';
import { latestRun, resultsFileSchema, runVerdict, type testRunSchema } from '../validate/schemas/results';

export { latestRun, runVerdict, testRuns, type TestVerdict } from '../validate/schemas/results';

export type TestRun = z.infer<typeof testRunSchema>;
export type ResultsFile = z.infer<typeof resultsFileSchema>;

export const DEFAULT_RESULTS_DIR = '.sifkit/test-results';

/**
 * Where test results are kept: the given directory, else beside the tree
 * the image is tested against (so stage, report and release find them
 * from any directory), else `.sifkit/test-results` here.
 */
export function resultsDirFor(given: string | undefined, root: string | undefined): string {
  if (given) return path.resolve(given);
  return root ? treeAt(path.resolve(root)).results : path.resolve(DEFAULT_RESULTS_DIR);
}

export function resultsPath(dir: string, image: string): string {
  return path.join(dir, `${image}.json`);
}

/** The results file, or undefined when there is none; a malformed one is an InputError naming the field. */
export async function readResults(file: string): Promise<ResultsFile | undefined> {
  let text: string;
  try {
    text = await readRegularFile(file, 'test results file');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  return parseJsonDocument(resultsFileSchema, text, `results file ${file}`, 'bad-results');
}

/**
 * An image's results when no file is named: those kept beside the tree,
 * else (an image tested without --root) those in `.sifkit/test-results` here.
 */
export async function resultsFor(image: string, root: string): Promise<{ file: string; doc?: ResultsFile }> {
  const beside = resultsPath(resultsDirFor(undefined, root), image);
  const doc = await readResults(beside);
  if (doc) return { file: beside, doc };
  const here = resultsPath(resultsDirFor(undefined, undefined), image);
  return { file: here, doc: await readResults(here) };
}

export async function saveRun(dir: string, run: TestRun): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = resultsPath(dir, run.image);
  const doc = (await readResults(file)) ?? { image: run.image, runs: [] };
  doc.runs.push(run);
  await writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n');
  return file;
}

/** The last run that passed its checks and its gate (what a later image is gated against). */
export function latestPassing(runs: TestRun[] | undefined): TestRun | undefined {
  return latestRun((runs ?? []).filter((r) => runVerdict(r) === 'passed'));
}

/** The image's latest run, when it passed: what lets a pipeline skip testing it again. */
export function passedNow(runs: TestRun[] | undefined): TestRun | undefined {
  const last = latestRun(runs);
  return last && runVerdict(last) === 'passed' ? last : undefined;
}

/** Every results file in a directory (for the report). */
export async function readAllResults(dir: string): Promise<ResultsFile[]> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  } catch {
    return [];
  }
  const out: ResultsFile[] = [];
  for (const n of names.sort()) {
    const r = await readResults(path.join(dir, n)).catch(() => undefined);
    if (r) out.push(r);
  }
  return out;
}
