import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, runCli } from '../support/cli';
import { JSON_DOCUMENTS } from '../../src/cli/json-schemas';
import { inspectSif } from '../../src/sif/inspect';
import { removeTestImages, runId, TEST_LABEL, TEST_TESTING, writeTinyRecipe } from '../support/engine';

/**
 * `release --on slurm` on the one-node Slurm here (with accounting, from
 * test/setup/slurm.sh): conversions as a job array, tests as jobs after
 * them, staging and promotion by the controller. Conversions of the
 * example take minutes on two cores, so one matrix run covers the whole
 * path, the controller killed in the middle and resumed.
 */
jest.setTimeout(1_800_000);

const DEFS = path.join(__dirname, '..', '..', 'docker-defs');

type Jobs = {
  variants: Array<{
    stem: string;
    convert?: { id: string; state: string; attempt: number; log: string; exitCode?: string };
    test?: { id: string; state: string };
  }>;
};

/** How many variants' conversions the controller has submitted: distinct array jobs in its phase lines
 * ("Slurm: convert queued (job 12_0)", then "running" for the same job, count once). */
function convertsSubmitted(stderr: string): number {
  return new Set([...stderr.matchAll(/Slurm: convert \w+ \(job (\d+)_/g)].map((m) => m[1])).size;
}

describe('release --on slurm: the CPU example as a matrix of 2, its controller killed and resumed', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-slurm-release-'));
    // The example with a second variant that differs in its last layer only, so the build cache serves both.
    await fs.cp(DEFS, path.join(dir, 'defs'), { recursive: true });
    const recipe = path.join(dir, 'defs', 'mpi4py-cpu', 'recipe.yaml');
    let text = await fs.readFile(recipe, 'utf8');
    text = text.replace('    - [mpi4py, mpi4py]\n', '    - [mpi4py, mpi4py]\n    - [variant, variant]\n');
    // Last in the image's own stage (bench.docker is a stage of its own, whose lines the image does not keep).
    text = text.replace(
      '  - mpi4py-cpu/demo-source.docker\n',
      '  - mpi4py-cpu/demo-source.docker\n  - mpi4py-cpu/variant.docker\n',
    );
    text = text.replace(
      'parameters:\n',
      'parameters:\n  variant:\n    type: enum\n    values: [a, b]\n    default: a\n',
    );
    text = text.replace(/^matrix:\n( {2}- .*\n)+/m, 'matrix:\n  - { variant: a }\n  - { variant: b }\n');
    await fs.writeFile(recipe, text);
    await fs.writeFile(
      path.join(dir, 'defs', 'mpi4py-cpu', 'variant.docker'),
      `LABEL ${TEST_LABEL}="${runId}" io.sifkit.test.variant="{{ variant }}"\n`,
    );
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const release = (extra: string[] = []) => [
    'release',
    path.join(dir, 'defs', 'mpi4py-cpu'),
    '--matrix',
    '--on',
    'slurm',
    '--poll',
    '1',
    '--root',
    'containers',
    '--init',
    '--out',
    'sif',
    '--results-dir',
    'results',
    '--log-dir',
    'logs',
    // lz4: squashing the example's 800 MB with gzip costs about 150 s of CPU per variant, lz4 about 3 s, and
    // nothing here reads the squashfs. Default gzip SIFs are converted and read in compat.test.ts; this also
    // proves the run's convert flags reach every Slurm task.
    '--compression',
    'lz4',
    ...extra,
  ];

  it('converts and tests as jobs, survives kill -9 of the controller, and a resume stages and promotes both', async () => {
    // The first controller dies (SIGKILL: no cleanup) once both variants' jobs are submitted.
    const child = spawn(process.execPath, [CLI, ...release()], { cwd: dir, env: { ...process.env, CI: '1' } });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (!killed && convertsSubmitted(stderr) >= 2) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    await new Promise((r) => child.on('close', r));
    expect(killed).toBe(true);

    // Another controller sees the jobs, from the record beside the SIFs and the scheduler.
    const listed = await runCli(['jobs', '--out', 'sif', '--json'], { cwd: dir });
    expect(listed.code).toBe(0);
    const jobs = JSON.parse(listed.stdout) as Jobs;
    // The document its published schema (docs/schemas/jobs.schema.json) describes.
    expect(JSON_DOCUMENTS.jobs.safeParse(jobs).error?.issues ?? []).toEqual([]);
    expect(jobs.variants.map((v) => v.stem)).toEqual([
      'lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-variant-a-conda-mpi4py',
      'lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-variant-b-conda-mpi4py',
    ]);
    // One array job per variant, each submitted on its own (that no variant waits for another's archive is the
    // runner's property, proved without timing in test/unit/pipeline-runner.test.ts).
    const arrayIds = new Set(jobs.variants.map((v) => v.convert!.id.split('_')[0]));
    expect(arrayIds.size).toBe(2);
    expect(jobs.variants.map((v) => v.convert!.id.split('_')[1])).toEqual(['0', '0']);

    const resumed = await runCli([...release(['--resume']), '--json'], { cwd: dir });
    expect(resumed.code).toBe(0);
    const doc = JSON.parse(resumed.stdout);
    for (const v of doc.variants) {
      expect(v.stages).toMatchObject({ slurm: 'done', stage: 'done', promote: 'done' });
      // Picked up, not submitted again.
      expect(v.results.slurm.convert).toMatchObject({ state: 'COMPLETED', attempt: 1 });
      expect(v.results.slurm.test).toMatchObject({ state: 'COMPLETED', attempt: 1 });
      const name = path.basename(v.sif);
      expect(execFileSync('siftool', ['header', v.sif]).toString()).toMatch(/Primary Architecture:\s+amd64/);
      expect((await inspectSif(v.sif)).partition!.compression).toBe('lz4');
      // The docker archive is staged beside the SIF.
      const tested = await fs.readdir(path.join(dir, 'containers', 'tested-containers'));
      expect(tested).toEqual(expect.arrayContaining([name, name.replace(/\.sif$/, '.tar')]));
      const ledger = JSON.parse(
        await fs.readFile(path.join(dir, 'containers', '.sifkit', 'ledger', `${name}.json`), 'utf8'),
      );
      expect(ledger.tests[0]).toMatchObject({ passed: true, runner: 'slurm', jobId: v.results.slurm.test.id });
      expect(ledger.archive.name).toBe(name.replace(/\.sif$/, '.tar'));
    }
    expect((await fs.readdir(path.join(dir, 'containers', 'sif-images'))).sort()).toEqual(
      doc.variants.map((v: { stem: string }) => `${v.stem}.sif`).sort(),
    );
    // Accounting answers for the finished conversions, with their exit codes.
    const acct = execFileSync('sacct', [
      '-n',
      '-P',
      '-X',
      '-j',
      [...arrayIds].join(','),
      '-o',
      'JobID,State,ExitCode',
    ]).toString();
    for (const id of arrayIds) expect(acct).toContain(`${id}_0|COMPLETED|0:0`);
    expect((await runCli(['verify', '--root', 'containers', '--deep'], { cwd: dir })).code).toBe(0);
  });
});

describe('release --on slurm: a failing conversion task', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-slurm-retry-'));
    await writeTinyRecipe(
      dir,
      `matrix:
  - { v: '1.0' }
  - { v: '1.1' }
${TEST_TESTING}`,
    );
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('survives kill -9 of its controller: sifkit jobs shows the jobs, --resume follows them without submitting again', async () => {
    const args = [
      'release',
      path.join(dir, 'defs', 'tiny'),
      '--matrix',
      '--on',
      'slurm',
      '--poll',
      '1',
      '--root',
      'tree-k',
      '--init',
      '--out',
      'sif-k',
      '--results-dir',
      'results-k',
      '--log-dir',
      'logs',
    ];
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, CI: '1' } });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (!killed && convertsSubmitted(stderr) >= 2) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    await new Promise((r) => child.on('close', r));
    expect(killed).toBe(true);
    const before = JSON.parse((await runCli(['jobs', '--out', 'sif-k', '--json'], { cwd: dir })).stdout) as Jobs;
    expect(before.variants).toHaveLength(2);
    const resumed = await runCli([...args, '--resume', '--json'], { cwd: dir });
    expect(resumed.code).toBe(0);
    const after = JSON.parse((await runCli(['jobs', '--out', 'sif-k', '--json'], { cwd: dir })).stdout) as Jobs;
    // The same jobs, each done on its first attempt.
    expect(after.variants.map((v) => [v.convert!.id, v.test!.id])).toEqual(
      before.variants.map((v) => [v.convert!.id, v.test!.id]),
    );
    for (const v of after.variants) expect(v.convert).toMatchObject({ state: 'COMPLETED', attempt: 1 });
    expect((await fs.readdir(path.join(dir, 'tree-k', 'sif-images'))).sort()).toEqual([
      'sifkittest-tiny-v-1.0.sif',
      'sifkittest-tiny-v-1.1.sif',
    ]);
  });

  it('is reported for its variant with log and exit code, the other variant released; a resume retries that task alone', async () => {
    const args = [
      'release',
      path.join(dir, 'defs', 'tiny'),
      '--matrix',
      '--on',
      'slurm',
      '--poll',
      '1',
      '--root',
      'tree',
      '--init',
      '--out',
      'sif',
      '--results-dir',
      'results',
      '--log-dir',
      'logs',
      '--json',
    ];
    const built = JSON.parse(
      (await runCli(['run', 'build', '--recipe', path.join(dir, 'defs', 'tiny'), '--matrix', '--json'], { cwd: dir }))
        .stdout,
    );
    const bad = path.join(dir, 'sif', `sifkittest-tiny-v-1.1-dockerhash-${built.variants[1].dockerhash}.tar`);
    await fs.mkdir(path.dirname(bad), { recursive: true });
    await fs.writeFile(bad, 'not a docker archive');

    const first = await runCli(args, { cwd: dir });
    expect(first.code).toBe(1);
    const doc = JSON.parse(first.stdout);
    expect(doc.variants[0].stages.promote).toBe('done');
    expect(doc.variants[1].stages.slurm).toMatch(
      /^FAILED: convert job \d+_0 ended FAILED \(exit 2:0\); log: .*\/sif\/\.sifkit-slurm\/logs\/convert-sifkittest-tiny-v-1\.1-[0-9a-f]{12}-\d+-0\.out$/,
    );
    const log = /log: (.*)$/.exec(doc.variants[1].stages.slurm)![1];
    expect(await fs.readFile(log, 'utf8')).toMatch(/sifkit: error: /);
    expect(doc.variants[1].stages.stage).toBe('not reached');

    await fs.rm(bad);
    const second = await runCli([...args, '--resume'], { cwd: dir });
    expect(second.code).toBe(0);
    const jobs = JSON.parse((await runCli(['jobs', '--out', 'sif', '--json'], { cwd: dir })).stdout) as Jobs;
    // By variant, not by place: each variant's jobs are recorded when its archive appears.
    const attempts = Object.fromEntries(jobs.variants.map((v) => [v.stem, v.convert!.attempt]));
    expect(attempts).toEqual({ 'sifkittest-tiny-v-1.0': 1, 'sifkittest-tiny-v-1.1': 2 });
    // The retry: an array of its own with the one task (a bad archive is bad input: exit 2).
    expect(jobs.variants.find((v) => v.stem === 'sifkittest-tiny-v-1.1')!.convert!.id).toMatch(/_0$/);
    expect((await fs.readdir(path.join(dir, 'tree', 'sif-images'))).sort()).toEqual([
      'sifkittest-tiny-v-1.0.sif',
      'sifkittest-tiny-v-1.1.sif',
    ]);
  });
});
