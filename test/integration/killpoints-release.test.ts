/**
 * The kill points of the commands that need an engine (see
 * killpoints.test.ts for the harness): `release` from the end of its build
 * on (the SIF's test results, stage, promote: every write it makes in the
 * tree), and `test --root` recording a run in the tree (its results file
 * and the ledger). The recipe is the tiny one; its image is built once,
 * before, so each stopped run reuses it. Each run converts the image again
 * and the SIF's provenance names the checkout's commit: a commit made while
 * a sweep runs makes its SIFs differ from the uninterrupted run's.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { readLedger } from '../../src/tree/ledger';
import { stage } from '../../src/tree/stage';
import { readResults, resultsPath } from '../../src/checks/results';
import { runCli } from '../support/cli';
import { removeTestImages, writeTinyRecipe } from '../support/engine';
import { SWEEP, sweep, type Scenario } from '../support/killpoints';

jest.setTimeout(900_000);

const { seed, per } = SWEEP;

interface ReleaseInputs {
  recipe: string;
  /** Where release writes what is not the tree's (its build logs). */
  logs: string;
  /** The image built once, and its SIF. */
  image: string;
  name: string;
  sif: string;
}

/** A release of the tiny recipe into the tree at `root`, its --out beside the tree. */
const releaseArgs = (root: string, inputs: ReleaseInputs) => [
  'release',
  inputs.recipe,
  '--root',
  root,
  '--out',
  path.join(path.dirname(root), 'out'),
  '--log-dir',
  inputs.logs,
  '--compression',
  'lz4',
];

const SCENARIOS: Array<Scenario<ReleaseInputs>> = [
  {
    name: 'release',
    prepare: async () => undefined,
    args: releaseArgs,
  },
  {
    name: 'test --root',
    appends: true,
    prepare: async (tree, inputs) => {
      await stage(tree, inputs.sif);
    },
    args: (root, inputs) => ['test', inputs.image, '--recipe', inputs.recipe, '--root', root],
    // Every run the results file holds is on the ledger's record too (what the tested signature covers).
    after: async (tree, inputs) => {
      const runs = (await readResults(resultsPath(tree.results, inputs.name)))?.runs ?? [];
      const recorded = new Set(((await readLedger(tree, inputs.name))?.tests ?? []).map((t) => t.started));
      return runs.filter((r) => !recorded.has(r.started)).map((r) => `the run of ${r.started} is not in the ledger`);
    },
  },
];

describe(`kill points of release and test (seed ${seed}, ${per} per command and signal)`, () => {
  let work: string;
  let inputs: ReleaseInputs;
  beforeAll(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-killpoints-release-'));
    process.stderr.write(`kill points: seed ${seed} (SIFKIT_KILLPOINTS_SEED), ${per} per command and signal\n`);
    const recipe = await writeTinyRecipe(work);
    const logs = path.join(work, 'logs');
    const first = await runCli([
      ...releaseArgs(path.join(work, 'seed', 'root'), { recipe, logs } as ReleaseInputs),
      '--init',
      '--json',
    ]);
    if (first.code !== 0) throw new Error(`the first release: ${first.stderr}`);
    const v = JSON.parse(first.stdout).variants[0] as { image: string; sif: string };
    const sif = path.join(work, path.basename(v.sif));
    await fs.copyFile(v.sif, sif);
    inputs = { recipe, logs, image: v.image, name: path.basename(v.sif), sif };
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(work, { recursive: true, force: true });
  });

  for (const sc of SCENARIOS)
    it(`${sc.name}: status and verify agree after every stop, and the rerun ends where an uninterrupted run does`, async () => {
      const { swept, writes, failures } = await sweep(sc, inputs, work);
      process.stderr.write(
        `kill points: ${sc.name}: ${swept} stops of ${writes} writes (SIGKILL and SIGINT), ${failures.length} failures\n`,
      );
      expect({ seed, failures }).toEqual({ seed, failures: [] });
    });
});
