/**
 * `sifkit run retire` means what `sifkit retire` means: a plan unless told
 * to apply (--apply, or `apply: 'true'` in the pipeline file), and the
 * EasyConfigs named by --easyconfigs keep their images.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { genTree, series } from '../support/gentree';

jest.setTimeout(120_000);

const A = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';

interface Decision {
  action: string;
  dir: string;
  name: string;
  references: string[];
}

describe('run retire', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-run-retire-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  async function fixture(name: string) {
    const root = path.join(dir, name);
    // Ten images of one series, 100 days apart from 400 days old: the policy keeps the newest two.
    const images = series(A, '6.2.0', 10, 400, 'a');
    await genTree(root, images);
    const kept = images[1];
    const ec = path.join(dir, `${name}-easyconfigs`);
    await fs.mkdir(path.join(ec, 'easybuild/easyconfigs/m/mpi4py'), { recursive: true });
    await fs.writeFile(
      path.join(ec, 'easybuild/easyconfigs/m/mpi4py/mpi4py-3.1.6-old.eb'),
      `local_dockerhash = '${kept.dockerhash}'\n`,
    );
    const policy = path.join(dir, `${name}-policy.yaml`);
    await fs.writeFile(
      policy,
      `directories:
  tested-containers: { keep_newest: 2, series: [stem], keep_younger_than_days: 5 }
  easybuild-sif-images: { keep_newest: 2, series: [stem], keep_younger_than_days: 5 }
quarantine_days: 30
`,
    );
    return { root, ec, policy, kept: `${A}-dockerhash-${kept.dockerhash}.sif` };
  }

  const run = (root: string, extra: string[]) =>
    runCli(['run', 'retire', '--recipe', 'mpi4py-cpu', '--root', root, '--json', ...extra]);

  function retireResult(stdout: string): { applied: boolean; plan: { decisions: Decision[] } } {
    return JSON.parse(stdout).variants[0].results.retire;
  }

  it('plans and changes nothing without --apply; the EasyConfigs given keep their image', async () => {
    const { root, ec, policy, kept } = await fixture('plan');
    const before = (await fs.readdir(path.join(root, 'tested-containers'))).sort();
    const r = await run(root, ['--policy', policy, '--easyconfigs', ec]);
    expect(r.code).toBe(0);
    const result = retireResult(r.stdout);
    expect(result.applied).toBe(false);
    expect(result.plan.decisions.filter((d) => d.action === 'retire').length).toBeGreaterThan(0);
    expect(result.plan.decisions.find((d) => d.name === kept && d.dir === 'easybuild-sif-images')).toMatchObject({
      action: 'keep',
      references: ['EasyConfig easybuild/easyconfigs/m/mpi4py/mpi4py-3.1.6-old.eb'],
    });
    expect((await fs.readdir(path.join(root, 'tested-containers'))).sort()).toEqual(before);
    // Without --json the stage's line names what it would retire.
    const plain = await runCli([
      'run',
      'retire',
      '--recipe',
      'mpi4py-cpu',
      '--root',
      root,
      '--policy',
      policy,
      '--easyconfigs',
      ec,
    ]);
    expect(plain.code).toBe(0);
    for (const d of result.plan.decisions.filter((x) => x.action === 'retire'))
      expect(plain.stderr).toContain(`${d.dir}/${d.name}`);
  });

  it('quarantines with --apply, never what an EasyConfig names', async () => {
    const { root, ec, policy, kept } = await fixture('apply');
    const r = await run(root, ['--policy', policy, '--easyconfigs', ec, '--apply']);
    expect(r.code).toBe(0);
    const result = retireResult(r.stdout);
    expect(result.applied).toBe(true);
    const retired = result.plan.decisions.filter((d) => d.action === 'retire');
    const quarantined = await fs.readdir(path.join(root, '.sifkit/quarantine/easybuild-sif-images'));
    expect(quarantined.filter((n) => n.endsWith('.sif')).sort()).toEqual(
      retired
        .filter((d) => d.dir === 'easybuild-sif-images')
        .map((d) => d.name)
        .sort(),
    );
    expect(await fs.readdir(path.join(root, 'easybuild-sif-images'))).toContain(kept);
  });

  it("applies when the pipeline file says apply: 'true', and refuses any other word or an unreadable policy (exit 2)", async () => {
    const { root, ec, policy } = await fixture('file');
    const file = (apply: string) => path.join(dir, `retire-${apply}.yaml`);
    for (const apply of ['true', 'yes'])
      await fs.writeFile(
        file(apply),
        `name: retire\nstages:\n  - render\n  - stage: retire\n    with:\n      apply: '${apply}'\n`,
      );
    const bad = await runCli([
      'run',
      file('yes'),
      '--recipe',
      'mpi4py-cpu',
      '--root',
      root,
      '--policy',
      policy,
      '--easyconfigs',
      ec,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /retire-yes\.yaml: stages\[1\] retire: with: apply: expected one of "true", "false", found the string "yes"/,
    );
    const noPolicy = await runCli([
      'run',
      'retire',
      '--recipe',
      'mpi4py-cpu',
      '--root',
      root,
      '--policy',
      path.join(dir, 'nosuch.yaml'),
    ]);
    expect(noPolicy.code).toBe(2);
    expect(noPolicy.stderr).toMatch(/cannot read the retention policy .*nosuch\.yaml \(ENOENT\)/);
    const r = await runCli([
      'run',
      file('true'),
      '--recipe',
      'mpi4py-cpu',
      '--root',
      root,
      '--policy',
      policy,
      '--easyconfigs',
      ec,
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(retireResult(r.stdout).applied).toBe(true);
  });

  it('takes retire --purge and --grace-days as the command does: the backup first, then the delete', async () => {
    const { root, ec, policy } = await fixture('purge');
    const withBackup = async (command: string) => {
      const f = path.join(dir, `purge-policy-${command.length}.yaml`);
      await fs.writeFile(f, (await fs.readFile(policy, 'utf8')) + `backup_command: ${command}\n`);
      return f;
    };
    const quarantined = () =>
      fs
        .readdir(path.join(root, '.sifkit/quarantine/tested-containers'))
        .then((l) => l.filter((n) => n.endsWith('.sif')).sort());
    expect((await run(root, ['--policy', policy, '--easyconfigs', ec, '--apply'])).code).toBe(0);
    const held = await quarantined();
    expect(held.length).toBeGreaterThan(0);
    // A backup that fails: the stage fails with one line, and every quarantined file stays.
    const failing = await run(root, [
      '--policy',
      await withBackup('sh -c "echo no route >&2; exit 4" {path}'),
      '--easyconfigs',
      ec,
      '--purge',
      '--grace-days',
      '0',
    ]);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(
      /retire --purge kept \d+ quarantined file\(s\): .*backup failed \(exit 4\): no route/,
    );
    expect(await quarantined()).toEqual(held);
    // A backup that works: copies first, then the quarantine is empty.
    const backup = path.join(dir, 'purge-backup');
    await fs.mkdir(backup);
    const ok = await run(root, [
      '--policy',
      await withBackup(`cp {path} ${backup}/`),
      '--easyconfigs',
      ec,
      '--purge',
      '--grace-days',
      '0',
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).variants[0].results.retire.purge.deleted.length).toBeGreaterThanOrEqual(held.length);
    expect(await fs.readdir(backup)).toEqual(expect.arrayContaining(held));
    expect(await quarantined()).toEqual([]);
    // A bad number is refused before anything runs.
    const bad = await run(root, ['--policy', policy, '--purge', '--grace-days', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--grace-days soon is not a whole number of days/);
  });
});
