/**
 * Test runs kept with the image: a results file per image (beside the
 * work, by default `.sifkit/test-results/<sif name>.json`) and, once the
 * image is in the tree, its ledger record.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errnoCode, InputError, isSifkitError } from '../errors';
import { readRegularFile, writeFileAtomic } from '../util/files';
import type { CheckResult } from './judge';

export interface TestRun {
  image: string;
  stem: string;
  dockerhash: string;
  recipe: string;
  runner: 'local' | 'slurm';
  host: string;
  jobId?: string;
  jobState?: string;
  started: string;
  finished: string;
  passed: boolean;
  checks: CheckResult[];
}

export interface ResultsFile {
  image: string;
  runs: TestRun[];
}

export const DEFAULT_RESULTS_DIR = '.sifkit/test-results';

export function resultsPath(dir: string, image: string): string {
  return path.join(dir, `${image}.json`);
}

export async function readResults(file: string): Promise<ResultsFile | undefined> {
  try {
    const doc = JSON.parse(await readRegularFile(file, 'test results file')) as ResultsFile;
    if (!doc || !Array.isArray(doc.runs)) throw new Error('no runs');
    return doc;
  } catch (e) {
    if (isSifkitError(e)) throw e;
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new InputError('bad-results', `${file} is not a sifkit test results file: ${(e as Error).message}`);
  }
}

export async function saveRun(dir: string, run: TestRun): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = resultsPath(dir, run.image);
  const doc = (await readResults(file)) ?? { image: run.image, runs: [] };
  doc.runs.push(run);
  await writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n');
  return file;
}

export function latestPassing(runs: TestRun[] | undefined): TestRun | undefined {
  return [...(runs ?? [])].reverse().find((r) => r.passed);
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
