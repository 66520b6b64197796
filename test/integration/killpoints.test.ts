/**
 * Every tree command stopped at its file-system writes (SIGKILL, and
 * SIGINT as Ctrl-C), then status, verify and a rerun judged
 * (test/support/killpoints.ts). The points are steps, not instants: the
 * hook counts the command's writes and stops it before the N-th. CI runs a
 * seeded sample of the points (SIFKIT_KILLPOINTS per command and signal,
 * default 1; `all` sweeps every write); SIFKIT_KILLPOINTS_SEED replays one.
 * The commands that need an engine (release, test) are swept in
 * killpoints-release.test.ts.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { SCENARIOS, makeInputs, type Inputs } from '../support/killpoint-scenarios';
import { SWEEP, sweep, type Scenario } from '../support/killpoints';

jest.setTimeout(600_000);

const { seed, per } = SWEEP;

describe(`kill points: each tree command stopped before each of its writes (seed ${seed}, ${per} per command and signal)`, () => {
  let work: string;
  beforeAll(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-killpoints-'));
    process.stderr.write(`kill points: seed ${seed} (SIFKIT_KILLPOINTS_SEED), ${per} per command and signal\n`);
  });
  afterAll(() => fs.rm(work, { recursive: true, force: true }));

  const each = (sc: Scenario<Inputs>) =>
    it(`${sc.name}: status and verify agree after every stop, and the rerun ends where an uninterrupted run does`, async () => {
      const inputs = await makeInputs(path.join(work, 'inputs'));
      const { swept, writes, failures } = await sweep(sc, inputs, work);
      process.stderr.write(
        `kill points: ${sc.name}: ${swept} stops of ${writes} writes (SIGKILL and SIGINT), ${failures.length} failures\n`,
      );
      expect({ seed, failures }).toEqual({ seed, failures: [] });
    });
  for (const sc of SCENARIOS) each(sc);
});
