/**
 * Every tree command stopped at its file-system writes (SIGKILL, and
 * SIGINT as Ctrl-C), then status, verify and a rerun judged
 * (test/support/killpoints.ts). The points are steps, not instants: the
 * hook counts the command's writes and stops it before the N-th. CI runs a
 * seeded sample of the points (SIFKIT_KILLPOINTS per command and signal,
 * default 1; `all` sweeps every write); SIFKIT_KILLPOINTS_SEED replays one.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { seeded } from '../../bench/torture';
import { verifyTree } from '../../src/tree/verify';
import {
  SCENARIOS,
  disagreements,
  endStateProblems,
  makeInputs,
  prepareCase,
  runCliPlain,
  runHooked,
  snapshot,
  temps,
  type KillSignal,
  type Scenario,
} from '../support/killpoints';

jest.setTimeout(600_000);

const seed = Number(process.env.SIFKIT_KILLPOINTS_SEED ?? '6060');
const per = process.env.SIFKIT_KILLPOINTS ?? '1';
const SIGNALS: KillSignal[] = ['SIGKILL', 'SIGINT'];

/**
 * The points to stop at, of the uninterrupted run's writes (1-based): all
 * of them, or `per` drawn by the seed among the command's own (the lock's
 * are alike for every command, and test/integration/lock.test.ts has them).
 */
function points(writes: string[], rnd: () => number): number[] {
  const all = writes.map((_, i) => i + 1);
  if (per === 'all') return all;
  const own = all.filter((n) => !/ ROOT\/\.sifkit\/\.?lock/.test(writes[n - 1]));
  const picked = new Set<number>();
  while (picked.size < Math.min(Number(per), own.length)) picked.add(own[Math.floor(rnd() * own.length)]);
  return [...picked].sort((a, b) => a - b);
}

describe(`kill points: each tree command stopped before each of its writes (seed ${seed}, ${per} per command and signal)`, () => {
  let work: string;
  beforeAll(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-killpoints-'));
    process.stderr.write(`kill points: seed ${seed} (SIFKIT_KILLPOINTS_SEED), ${per} per command and signal\n`);
  });
  afterAll(() => fs.rm(work, { recursive: true, force: true }));

  const each = (sc: Scenario) =>
    it(`${sc.name}: status and verify agree after every stop, and the rerun ends where an uninterrupted run does`, async () => {
      const inputs = await makeInputs(path.join(work, 'inputs'));
      const dir = (s: string) => path.join(work, `${sc.name.replace(/\W+/g, '-')}-${s}`);
      // The uninterrupted run: its writes are the points, its tree the end state.
      const refTree = await prepareCase(dir('reference'), sc, inputs);
      const under = sc.under ?? ((root: string) => root);
      const ref = await runHooked(
        sc.args(refTree.root, inputs),
        refTree.root,
        path.join(dir('reference'), 'log'),
        undefined,
        undefined,
        under(refTree.root),
      );
      // Its stderr shown when it failed (a failure of the scenario, not of a stop).
      expect({ code: ref.code, stderr: ref.code === 0 ? '' : ref.stderr }).toEqual({ code: 0, stderr: '' });
      const reference = await snapshot(refTree.root, sc.appends);
      // A checkout the command changes (EasyConfigs archived) must end as the uninterrupted run left it, too.
      const checkout = (root: string) => (sc.under ? sc.easyconfigs?.(root, inputs) : undefined);
      const refCheckout = checkout(refTree.root) && (await snapshot(checkout(refTree.root)!));
      const rnd = seeded(seed + sc.name.length);
      const failures: string[] = [];
      let swept = 0;
      for (const sig of SIGNALS) {
        for (const at of points(ref.writes, rnd)) {
          swept++;
          const where = `seed ${seed}: ${sc.name}, ${sig} before write ${at}/${ref.writes.length} (${ref.writes[at - 1]})`;
          const tree = await prepareCase(dir(`${sig}-${at}`), sc, inputs);
          const args = sc.args(tree.root, inputs);
          const before = await temps(tree.root);
          const killed = await runHooked(
            args,
            tree.root,
            path.join(dir(`${sig}-${at}`), 'log'),
            at,
            sig,
            under(tree.root),
          );
          for (const d of await disagreements(tree, sig, killed, before, sc.easyconfigs?.(tree.root, inputs)))
            failures.push(`${where}: ${d}`);
          const again = await runCliPlain(args);
          if (again.code !== 0) failures.push(`${where}: the rerun exit ${again.code}: ${again.stderr.trim()}`);
          // What a stop leaves that the rerun does not take back (its temp files, a stale stat) is verify --repair's.
          if ((await verifyTree(tree)).length) {
            const repaired = await runCliPlain(['verify', '--repair', '--root', tree.root]);
            if (repaired.code !== 0)
              failures.push(`${where}: verify --repair exit ${repaired.code}: ${repaired.stderr.trim()}`);
          }
          for (const d of await endStateProblems(tree, reference, sc.appends))
            failures.push(`${where}: after the rerun: ${d}`);
          const c = checkout(tree.root);
          if (c && JSON.stringify(await snapshot(c)) !== JSON.stringify(refCheckout))
            failures.push(`${where}: after the rerun: the EasyConfig checkout differs from the uninterrupted run's`);
          await fs.rm(dir(`${sig}-${at}`), { recursive: true, force: true });
        }
      }
      process.stderr.write(
        `kill points: ${sc.name}: ${swept} stops of ${ref.writes.length} writes x 2 signals, ${failures.length} failures\n`,
      );
      expect({ seed, failures }).toEqual({ seed, failures: [] });
    });
  for (const sc of SCENARIOS) each(sc);
});
