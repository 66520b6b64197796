/**
 * `retire --purge` through in-memory programs: the policy's backup command
 * runs first, for each quarantined file, and a file whose backup failed is
 * never deleted. The tree is a real one in a temporary directory.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parsePolicy } from '../../src/tree/policy';
import { purge, purgeError, retire } from '../../src/tree/retire';
import { genTree, series } from '../support/gentree';
import { FakeProcesses, command } from '../support/fake-processes';

const STEM = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
const policy = parsePolicy(
  'directories:\n  tested-containers: { keep_newest: 1, series: [stem], keep_younger_than_days: 0 }\nquarantine_days: 30\nbackup_command: backup-to-tape {path} {name}\n',
  'policy.yaml',
);

// One directory for the file: genTree keeps its template SIF beside the first tree it makes.
let dir: string;
let trees = 0;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-purge-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

async function quarantinedTree() {
  const images = series(STEM, '6.2.0', 3, 100, 'c').map((i) => ({ ...i, dirs: ['tested-containers' as const] }));
  const tree = await genTree(path.join(dir, `root-${++trees}`), images);
  const r = await retire(tree, { policy, apply: true });
  const retired = r.plan.decisions
    .filter((d) => d.action === 'retire')
    .map((d) => d.name)
    .sort();
  expect(retired).toHaveLength(2);
  const inQuarantine = async () =>
    (await fs.readdir(path.join(tree.quarantine, 'tested-containers'))).filter((n) => n.endsWith('.sif')).sort();
  expect(await inQuarantine()).toEqual(retired);
  return { tree, retired, inQuarantine };
}

it('backs each file up through the policy command, then deletes it', async () => {
  const { tree, retired, inQuarantine } = await quarantinedTree();
  const programs = new FakeProcesses().on(command('sh', '-c'), { exit: 0 });
  const r = await purge(tree, policy, { graceDays: 0, processes: programs });
  expect(r.deleted).toEqual(expect.arrayContaining(retired.map((n) => `tested-containers/${n}`)));
  expect(await inQuarantine()).toEqual([]);
  // One backup per file, its path and name quoted into the template, before the delete.
  const lines = programs.callsOf('sh').map((c) => c.args[1]);
  for (const name of retired) expect(lines).toContainEqual(expect.stringContaining(`'${name}'`));
  expect(lines.every((l) => l.startsWith('backup-to-tape '))).toBe(true);
});

it("keeps every file whose backup failed, with the command's own last line", async () => {
  const { tree, retired, inQuarantine } = await quarantinedTree();
  const programs = new FakeProcesses().on(command('sh', '-c'), { stderr: 'tape library offline\n', exit: 3 });
  const r = await purge(tree, policy, { graceDays: 0, processes: programs });
  expect(r.deleted).toEqual([]);
  expect(r.kept.map((k) => k.name).sort()).toEqual(retired.map((n) => `tested-containers/${n}`));
  expect(r.kept[0].why).toMatch(/backup failed \(exit 3\): tape library offline/);
  // Told by its kind, never by its text: the refusal the command and the pipeline throw.
  expect(r.kept.every((k) => k.kind === 'backup-failed')).toBe(true);
  expect(purgeError(r)).toMatchObject({
    code: 'backup-failed',
    exitCode: 1,
    message: expect.stringMatching(
      /^retire --purge kept \d+ quarantined file\(s\): tested-containers\/.*: backup failed \(exit 3\): tape library offline$/,
    ),
  });
  expect(await inQuarantine()).toEqual(retired);
});

it('runs no backup within the grace period', async () => {
  const { tree, retired, inQuarantine } = await quarantinedTree();
  const programs = new FakeProcesses().on(command('sh', '-c'), { exit: 0 });
  const r = await purge(tree, policy, { processes: programs });
  expect(r.deleted).toEqual([]);
  expect(programs.calls).toEqual([]);
  // Kept within the grace period is as it should be: no failure, whatever a backup command's message might say.
  expect(r.kept.every((k) => k.kind === 'grace')).toBe(true);
  expect(purgeError(r)).toBeUndefined();
  expect(await inQuarantine()).toEqual(retired);
});
