import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, runCli } from '../support/cli';
import { genTree, series } from '../support/gentree';
import { readAudit } from '../../src/tree/audit';
import { seeded } from '../../bench/torture';

jest.setTimeout(300_000);

const A = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
const B = 'lumi-mpi4py-rocm-6.2.4-python-3.12-mpi4py-4.0.1';

async function listing(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(rel: string): Promise<void> {
    for (const name of (await fs.readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.sifkit/audit.log') continue;
      const st = await fs.lstat(path.join(root, r));
      if (st.isDirectory()) await walk(r);
      else if (st.isSymbolicLink()) out[r] = `-> ${await fs.readlink(path.join(root, r))}`;
      else
        out[r] = createHash('sha256')
          .update(await fs.readFile(path.join(root, r)))
          .digest('hex');
    }
  }
  await walk('');
  return out;
}

async function verifyOk(root: string): Promise<void> {
  const r = await runCli(['verify', '--root', root]);
  expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: 'tree is clean\n' });
}

let policies = 0;
async function policyFile(dir: string, extra = ''): Promise<string> {
  const f = path.join(dir, `policy-${++policies}.yaml`);
  await fs.writeFile(
    f,
    `directories:
  tested-containers: { keep_newest: 2, series: [stem], keep_younger_than_days: 5 }
  easybuild-sif-images: { keep_newest: 3, series: [stem, rocm-minor], keep_younger_than_days: 5 }
quarantine_days: 30
${extra}`,
  );
  return f;
}

describe('retire on a real tree', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-retire-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  async function fixture(name: string) {
    const root = path.join(dir, name);
    const images = [...series(A, '6.2.0', 120, 1500, 'a'), ...series(B, '6.2.4', 80, 900, 'b')];
    await genTree(root, images);
    const newestA = images[119];
    const oldA = images[10];
    await fs.symlink(
      `../easybuild-sif-images/${A}-dockerhash-${newestA.dockerhash}.sif`,
      path.join(root, 'sif-images', `${A}.sif`),
    );
    // An older image that a user-facing link still names.
    await fs.symlink(
      `../tested-containers/${B}-dockerhash-${images[150].dockerhash}.sif`,
      path.join(root, 'sif-images', `${B}.sif`),
    );
    const ec = path.join(dir, `${name}-easyconfigs`);
    await fs.mkdir(path.join(ec, 'easybuild/easyconfigs/m/mpi4py'), { recursive: true });
    await fs.mkdir(path.join(ec, 'easybuild/easyconfigs/__archive__/m/mpi4py'), { recursive: true });
    await fs.writeFile(
      path.join(ec, 'easybuild/easyconfigs/m/mpi4py/mpi4py-3.1.6-old.eb'),
      `local_dockerhash = '${oldA.dockerhash}'\n`,
    );
    // Archived EasyConfigs do not keep anything.
    await fs.writeFile(
      path.join(ec, 'easybuild/easyconfigs/__archive__/m/mpi4py/mpi4py-3.1.6-older.eb'),
      `local_dockerhash = '${images[11].dockerhash}'\n`,
    );
    return { root, ec, images, newestA, oldA };
  }

  it('prints a plan that changes nothing, keeping what links and active EasyConfigs name', async () => {
    const { root, ec, images, oldA } = await fixture('plan');
    const before = await listing(root);
    const r = await runCli([
      'retire',
      '--root',
      root,
      '--policy',
      await policyFile(dir),
      '--easyconfigs',
      ec,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.applied).toBe(false);
    expect(await listing(root)).toEqual(before);
    const decision = (d: string, h: string) =>
      plan.decisions.find((x: { dir: string; name: string }) => x.dir === d && x.name.endsWith(`${h}.sif`));
    expect(decision('easybuild-sif-images', oldA.dockerhash)).toMatchObject({
      action: 'keep',
      references: ['EasyConfig easybuild/easyconfigs/m/mpi4py/mpi4py-3.1.6-old.eb'],
    });
    expect(decision('easybuild-sif-images', images[11].dockerhash).action).toBe('retire');
    expect(decision('tested-containers', images[150].dockerhash)).toMatchObject({
      action: 'keep',
      references: [`sif-images/${B}.sif`],
    });
    expect(plan.decisions.filter((d: { action: string }) => d.action === 'keep').length).toBe(2 + 2 + 3 + 3 + 2);
  });

  it('--apply quarantines, leaves no dangling link, and restore brings one back', async () => {
    const { root, ec, images } = await fixture('apply');
    const r = await runCli([
      'retire',
      '--root',
      root,
      '--policy',
      await policyFile(dir),
      '--easyconfigs',
      ec,
      '--apply',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const left = await fs.readdir(path.join(root, 'tested-containers'));
    expect(left).toHaveLength(2 + 2 + 1);
    const q = await fs.readdir(path.join(root, '.sifkit/quarantine/tested-containers'));
    expect(q.filter((n) => n.endsWith('.sif'))).toHaveLength(200 - 5);
    await verifyOk(root);
    const audit = await readAudit(path.join(root, '.sifkit/audit.log'));
    expect(audit.at(-1)).toMatchObject({ action: 'retire', outcome: 'ok' });
    const name = `${A}-dockerhash-${images[0].dockerhash}.sif`;
    const back = await runCli(['restore', name, '--dir', 'tested-containers', '--root', root]);
    expect(back.code).toBe(0);
    expect(await fs.readdir(path.join(root, 'tested-containers'))).toContain(name);
    // Running it again is safe: the same decision, the same result.
    const again = await runCli([
      'retire',
      '--root',
      root,
      '--policy',
      await policyFile(dir),
      '--easyconfigs',
      ec,
      '--apply',
      '--json',
    ]);
    expect(again.code).toBe(0);
    expect(await fs.readdir(path.join(root, 'tested-containers'))).toHaveLength(5);
  });

  it('a broken image still referenced: refused (exit 3) without --include-referenced; archived and relinked with it', async () => {
    const { root, ec, images, newestA } = await fixture('broken');
    const newestName = `${A}-dockerhash-${newestA.dockerhash}.sif`;
    await fs.writeFile(
      path.join(ec, 'easybuild/easyconfigs/m/mpi4py/mpi4py-3.1.6-new.eb'),
      `local_sif = 'x-dockerhash-${newestA.dockerhash}.sif'\n`,
    );
    const policy = await policyFile(
      dir,
      `broken:\n  - name: ${newestName}\n    reason: MPI hangs after the Slingshot update\n`,
    );
    const before = await listing(root);
    const refused = await runCli(['retire', '--root', root, '--policy', policy, '--easyconfigs', ec, '--apply']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(
      new RegExp(
        `still referenced: easybuild-sif-images/${newestName} by sif-images/${A}.sif, EasyConfig easybuild/easyconfigs/m/mpi4py/mpi4py-3.1.6-new.eb`,
      ),
    );
    expect(await listing(root)).toEqual(before);
    const ok = await runCli([
      'retire',
      '--root',
      root,
      '--policy',
      policy,
      '--easyconfigs',
      ec,
      '--apply',
      '--include-referenced',
    ]);
    expect(ok.code).toBe(0);
    expect(await fs.readdir(path.join(ec, 'easybuild/easyconfigs/__archive__/m/mpi4py'))).toContain(
      'mpi4py-3.1.6-new.eb',
    );
    const previous = `${A}-dockerhash-${images[118].dockerhash}.sif`;
    expect(await fs.readlink(path.join(root, 'sif-images', `${A}.sif`))).toBe(`../easybuild-sif-images/${previous}`);
    expect(await fs.readdir(path.join(root, '.sifkit/quarantine/easybuild-sif-images'))).toContain(newestName);
    await verifyOk(root);
  });

  it('survives kill -9 during --apply at seeded instants inside its measured run time: a rerun finishes, and no image is lost', async () => {
    const seed = Number(process.env.SIFKIT_TEST_SEED ?? '1502');
    const rnd = seeded(seed);
    const policy = await policyFile(dir);
    const apply = (root: string, ec: string) => [
      CLI,
      'retire',
      '--root',
      root,
      '--policy',
      policy,
      '--easyconfigs',
      ec,
      '--apply',
    ];
    // How long an unkilled --apply runs here, on an identical tree: the kills are drawn inside it.
    const m = await fixture('kill-measure');
    const t0 = Date.now();
    expect((await runCli(apply(m.root, m.ec).slice(1))).code).toBe(0);
    const runMs = Date.now() - t0;
    const { root, ec } = await fixture('kill');
    const count = async () => {
      let n = 0;
      for (const d of [
        'tested-containers',
        'easybuild-sif-images',
        '.sifkit/quarantine/tested-containers',
        '.sifkit/quarantine/easybuild-sif-images',
      ])
        n += (await fs.readdir(path.join(root, d)).catch(() => [] as string[])).filter((f) =>
          f.endsWith('.sif'),
        ).length;
      return n;
    };
    const total = await count();
    for (let i = 0; i < 4; i++) {
      const at = Math.round(rnd() * runMs);
      const child = spawn(process.execPath, apply(root, ec), { stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), at);
      await new Promise((r) => child.on('close', r));
      clearTimeout(timer);
      expect({ seed, i, at, images: await count() }).toEqual({ seed, i, at, images: total });
    }
    expect((await runCli(apply(root, ec).slice(1))).code).toBe(0);
    expect((await runCli(['verify', '--repair', '--root', root])).code).toBe(0);
    await verifyOk(root);
    expect(await count()).toBe(total);
    expect(await fs.readdir(path.join(root, 'tested-containers'))).toHaveLength(5);
  });

  it('--purge deletes only after the grace period and a successful backup', async () => {
    const { root, ec } = await fixture('purge');
    const backup = path.join(dir, 'backup');
    await fs.mkdir(backup);
    expect(
      (await runCli(['retire', '--root', root, '--policy', await policyFile(dir), '--easyconfigs', ec, '--apply']))
        .code,
    ).toBe(0);
    const quarantined = (await fs.readdir(path.join(root, '.sifkit/quarantine/tested-containers'))).filter((f) =>
      f.endsWith('.sif'),
    );
    // Within the grace period nothing goes.
    const early = await runCli([
      'retire',
      '--purge',
      '--root',
      root,
      '--policy',
      await policyFile(dir, 'backup_command: cp {path} ' + backup + '/\n'),
      '--json',
    ]);
    expect(JSON.parse(early.stdout).deleted).toEqual([]);
    // A failing backup keeps every file.
    const failing = await runCli([
      'retire',
      '--purge',
      '--grace-days',
      '0',
      '--root',
      root,
      '--policy',
      await policyFile(dir, 'backup_command: sh -c "echo no route to object storage >&2; exit 4" {path}\n'),
      '--json',
    ]);
    expect(failing.code).toBe(1);
    expect(JSON.parse(failing.stdout).kept[0].why).toMatch(/backup failed \(exit 4\): no route to object storage/);
    expect(
      (await fs.readdir(path.join(root, '.sifkit/quarantine/tested-containers'))).filter((f) => f.endsWith('.sif')),
    ).toEqual(quarantined);
    // A working backup: the copies exist, then the files go.
    const ok = await runCli([
      'retire',
      '--purge',
      '--grace-days',
      '0',
      '--root',
      root,
      '--policy',
      await policyFile(dir, 'backup_command: cp {path} ' + backup + '/\n'),
      '--json',
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).deleted.length).toBeGreaterThan(quarantined.length);
    expect((await fs.readdir(backup)).sort()).toEqual(expect.arrayContaining(quarantined));
    expect(
      (await fs.readdir(path.join(root, '.sifkit/quarantine/tested-containers'))).filter((f) => f.endsWith('.sif')),
    ).toEqual([]);
    await verifyOk(root);
  });

  it('in a development clone of links, never touches a production file', async () => {
    const { root: prod } = await fixture('prod');
    const clone = path.join(dir, 'clone');
    for (const d of ['tested-containers', 'easybuild-sif-images', 'sif-images'])
      await fs.mkdir(path.join(clone, d), { recursive: true });
    for (const d of ['tested-containers', 'easybuild-sif-images'])
      for (const n of await fs.readdir(path.join(prod, d)))
        await fs.symlink(path.join(prod, d, n), path.join(clone, d, n));
    // The clone carries the production records (what each image is and how old).
    await fs.cp(path.join(prod, '.sifkit', 'ledger'), path.join(clone, '.sifkit', 'ledger'), { recursive: true });
    const before = await listing(prod);
    const apply = await runCli(['retire', '--root', clone, '--policy', await policyFile(dir), '--apply']);
    expect(apply.code).toBe(0);
    const purge = await runCli([
      'retire',
      '--purge',
      '--grace-days',
      '0',
      '--root',
      clone,
      '--policy',
      await policyFile(dir, 'backup_command: "false {path}"\n'),
    ]);
    expect(purge.code).toBe(0);
    expect(await listing(prod)).toEqual(before);
    expect((await fs.readdir(path.join(clone, 'tested-containers'))).length).toBeLessThan(10);
  });

  it('malformed policies: a clear error, exit 2', async () => {
    const bad = path.join(dir, 'bad.yaml');
    await fs.writeFile(bad, 'directories:\n  tested-containers: { keep_newest: many }\n');
    const r = await runCli(['retire', '--root', dir, '--policy', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `sifkit: error: ${bad}: directories.tested-containers.keep_newest: expected a number, found the string "many"\n`,
    );
  });
});
