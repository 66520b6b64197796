import { execFileSync, execSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { BUSYBOX, docker, removeTestImages, runId, testRecipeHead } from '../support/engine';
import { buildFixtureImage } from '../support/trees';
import { makeSif } from '../support/sifs';
import type { ResultsFile } from '../../src/checks/results';
import { until } from '../support/poll';

jest.setTimeout(600_000);

const EXAMPLE = 'lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4-conda-mpi4py';

function slurmUp(): void {
  // The one-node cluster scripts/services.sh starts (test/setup/slurm.sh).
  const out = execSync('sinfo -h -o %T').toString();
  if (!/idle|mixed|alloc/.test(out))
    throw new Error(`no Slurm node is up (sinfo: ${out.trim()}); run scripts/services.sh`);
}

describe('sifkit test on the example image, locally and through a real Slurm', () => {
  let dir: string;
  let exampleName: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-checks-'));
    // Reused when present (its definition hash), built otherwise.
    const b = await runCli(['build', 'mpi4py-cpu', '--json']);
    expect(b.code).toBe(0);
    slurmUp();
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('runs the CPU checks locally: Allreduce over 2 ranks and the ping-pong figures', async () => {
    const r = await runCli(['test', EXAMPLE, '--runner', 'local', '--results-dir', dir, '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    exampleName = doc.run.image;
    expect(doc.run.checks.map((c: { name: string; passed: boolean }) => [c.name, c.passed])).toEqual([
      ['mpi4py-import', true],
      ['allreduce', true],
      ['pingpong', true],
    ]);
    const ping = doc.run.checks[2];
    expect(ping.figures.kind).toBe('latency');
    expect(ping.figures.points.map((p: { size: number }) => p.size)).toEqual([
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
    ]);
  });

  it('runs them through sbatch on the Slurm cluster and reads the results back', async () => {
    const workdir = path.join(dir, 'job');
    const r = await runCli([
      'test',
      EXAMPLE,
      '--runner',
      'slurm',
      '--results-dir',
      dir,
      '--workdir',
      workdir,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.run).toMatchObject({ runner: 'slurm', passed: true, jobState: 'COMPLETED' });
    expect(doc.run.jobId).toMatch(/^\d+$/);
    expect(execSync(`scontrol show job -o ${doc.run.jobId}`).toString()).toContain('JobState=COMPLETED');
    expect(await fs.readFile(path.join(workdir, 'job.sh'), 'utf8')).toContain('#SBATCH --partition=standard-g');
    const results = JSON.parse(await fs.readFile(path.join(dir, `${exampleName}.json`), 'utf8')) as ResultsFile;
    expect(results.runs.map((x) => x.runner)).toEqual(['local', 'slurm']);
  });

  it('fails the gate (exit 3) when figures are worse than the baseline beyond the tolerance', async () => {
    const results = JSON.parse(await fs.readFile(path.join(dir, `${exampleName}.json`), 'utf8')) as ResultsFile;
    // A baseline ten times faster than anything this machine does.
    const fast = JSON.parse(JSON.stringify(results.runs[0])) as ResultsFile['runs'][0];
    for (const c of fast.checks) for (const p of c.figures?.points ?? []) p.value /= 10;
    const baseline = path.join(dir, 'baseline.json');
    await fs.writeFile(baseline, JSON.stringify({ image: 'older.sif', runs: [{ ...fast, image: 'older.sif' }] }));
    const r = await runCli([
      'test',
      EXAMPLE,
      '--check',
      'pingpong',
      '--results-dir',
      path.join(dir, 'gated'),
      '--baseline',
      baseline,
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /sifkit: error: \d+ figure\(s\) worse than older.sif by more than 10%: worst pingpong at \d+ B, latency/,
    );
    // Against a baseline a thousand times slower the gate passes, whatever
    // the load on this machine (latency here varies several-fold with it);
    // every size the baseline measured is measured again.
    const slow = JSON.parse(JSON.stringify(results.runs[0])) as ResultsFile['runs'][0];
    for (const c of slow.checks) for (const p of c.figures?.points ?? []) p.value *= 1000;
    const same = path.join(dir, 'same.json');
    await fs.writeFile(same, JSON.stringify({ image: 'older.sif', runs: [{ ...slow, image: 'older.sif' }] }));
    const ok = await runCli([
      'test',
      EXAMPLE,
      '--check',
      'pingpong',
      '--results-dir',
      path.join(dir, 'gated'),
      '--baseline',
      same,
    ]);
    // The error, if any, is shown beside the code.
    expect([ok.code, ok.stderr]).toEqual([0, expect.any(String)]);
  });

  it('stage refuses an image without a passing run, and records the runs with it', async () => {
    const root = path.join(dir, 'tree');
    await fs.mkdir(root);
    const parsed = /^(.*)-dockerhash-([0-9a-f]{12})\.sif$/.exec(exampleName)!;
    const sif = path.join(dir, 'example.sif');
    await makeSif(sif, { stem: parsed[1], dockerhash: parsed[2] });
    const refused = await runCli(['stage', sif, '--root', root, '--results', path.join(dir, 'nothing.json')]);
    expect(refused.code).toBe(2);
    const untested = await runCli(['stage', sif, '--root', root], { cwd: dir });
    expect(untested.code).toBe(3);
    expect(untested.stderr).toMatch(/has no passing test run/);
    // The hint's commands carry this image and tree: they can be pasted.
    expect(untested.stderr).toContain(
      `sifkit: hint: test it first: sifkit test ${sif} --root ${root}; or stage it untested: sifkit stage ${sif} --untested --root ${root}\n`,
    );
    const staged = await runCli(['stage', sif, '--root', root, '--results', path.join(dir, `${exampleName}.json`)]);
    expect(staged.code).toBe(0);
    const ledger = JSON.parse(await fs.readFile(path.join(root, '.sifkit', 'ledger', `${exampleName}.json`), 'utf8'));
    expect(ledger.tests.length).toBeGreaterThanOrEqual(2);
    // A later run is recorded in the ledger too.
    const again = await runCli(['test', EXAMPLE, '--check', 'mpi4py-import', '--results-dir', dir, '--root', root]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('(and the tree ledger)');
  });

  it('makes a report that headless Chromium renders', async () => {
    const out = path.join(dir, 'report');
    const r = await runCli(['report', '--results-dir', dir, '--out', out]);
    expect(r.code).toBe(0);
    const html = await fs.readFile(path.join(out, 'index.html'), 'utf8');
    expect(html).toContain('pingpong: latency against message size');
    const shot = path.join(out, 'report.png');
    execFileSync(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        `--screenshot=${shot}`,
        '--window-size=1200,900',
        `file://${path.join(out, 'index.html')}`,
      ],
      { stdio: 'ignore', timeout: 120_000 },
    );
    const png = await fs.readFile(shot);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(1200);
    // A blank page compresses to almost nothing; charts and a table do not.
    expect(png.length).toBeGreaterThan(20_000);
  });
});

describe('sifkit test: failures, timeouts and cancelled jobs are reported as such', () => {
  let dir: string;
  const tag = `sifkittest/checks:${runId}`;
  beforeAll(async () => {
    slurmUp();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-checks-bad-'));
    await buildFixtureImage(
      docker,
      tag,
      `FROM ${BUSYBOX}\nLABEL io.sifkit.stem="sifkittest-checks-${runId}" io.sifkit.recipe="checks"\n`,
    );
    await fs.mkdir(path.join(dir, 'checks'));
    await fs.writeFile(path.join(dir, 'checks', 'main.docker'), 'FROM scratch\n');
    await fs.writeFile(
      path.join(dir, 'checks', 'recipe.yaml'),
      `${testRecipeHead('checks')}checks:
  - { name: ok, command: 'echo hello from the check', expect: 'hello from' }
  - { name: fails, command: 'sh -c "echo broken; exit 3"' }
  - { name: sleepy, command: 'sleep 120', timeout: 3 }
testing:
  local: { launcher: '' }
  slurm:
    sbatch: []
    srun: srun -N 1 -n 1
    container: docker run --rm --init --network=none --label sifkit.slurm.workdir={workdir} -v {workdir}:/myrun {image}
    launcher: ''
    cleanup: docker ps -q --filter label=sifkit.slurm.workdir={workdir} | xargs -r docker rm -f >/dev/null
`,
    );
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  for (const runner of ['local', 'slurm']) {
    it(`${runner}: a failing check and a timed-out one fail the run (exit 1), each with its reason`, async () => {
      const r = await runCli([
        'test',
        tag,
        '--runner',
        runner,
        '--recipe',
        path.join(dir, 'checks'),
        '--results-dir',
        path.join(dir, 'results'),
        '--workdir',
        path.join(dir, `job-${runner}`),
        '--json',
      ]);
      expect(r.code).toBe(1);
      const checks = JSON.parse(r.stdout).run.checks;
      expect(
        checks.map((c: { name: string; outcome: string; reason?: string }) => [c.name, c.outcome, c.reason]),
      ).toEqual([
        ['ok', 'passed', undefined],
        ['fails', 'failed', 'exit status 3'],
        ['sleepy', 'timeout', 'timed out after 3 s'],
      ]);
    });
  }

  it('slurm: a job cancelled with scancel is reported as cancelled', async () => {
    const recipe = path.join(dir, 'long');
    await fs.mkdir(recipe);
    await fs.writeFile(path.join(recipe, 'main.docker'), 'FROM scratch\n');
    const text = (await fs.readFile(path.join(dir, 'checks', 'recipe.yaml'), 'utf8'))
      .replace('checks/main.docker', 'long/main.docker')
      .replace(
        /checks:\n[\s\S]*?testing:/,
        "checks:\n  - { name: long, command: 'sleep 300', timeout: 600 }\ntesting:",
      );
    await fs.writeFile(path.join(recipe, 'recipe.yaml'), text);
    const started = runCli([
      'test',
      tag,
      '--runner',
      'slurm',
      '--recipe',
      recipe,
      '--results-dir',
      path.join(dir, 'results'),
      '--workdir',
      path.join(dir, 'job-cancel'),
      '--json',
    ]);
    let cancelled = false;
    let finished = false;
    void started.finally(() => (finished = true));
    // Polled until the check runs in its container (jest's timeout bounds it), however slow the
    // scheduler is today; not merely until the job runs. A cancel while `docker run` is still
    // starting the container leaves the start to the daemon, after the job's cleanup has looked
    // (CI saw the container outlive the job once). Docker stands in for Singularity here, whose
    // containers are the job's own processes and end with it.
    const name = `sifkit-test-${(await docker.getImage(tag).inspect()).Id.slice(7, 19)}`;
    const containers = () =>
      execSync(`docker ps -q --filter label=sifkit.slurm.workdir=${path.join(dir, 'job-cancel')}`)
        .toString()
        .trim();
    await until(() => {
      const ids = containers() && execSync(`squeue -h -t RUNNING -n ${name} -o %i`).toString().trim();
      if (ids) {
        execSync(`scancel ${ids}`);
        cancelled = true;
      }
      return cancelled || finished;
    }, 250);
    expect(cancelled).toBe(true);
    const r = await started;
    expect(r.code).toBe(1);
    const run = JSON.parse(r.stdout).run;
    expect(run.jobState).toMatch(/^CANCELLED/);
    expect(run.checks[0]).toMatchObject({ name: 'long', outcome: 'cancelled', reason: 'the job was cancelled' });
    // The cancelled step's container went with it.
    expect(containers()).toBe('');
  });
});
