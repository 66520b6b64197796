/**
 * --on slurm's executor over programs and time in memory: what it submits
 * and in what order, the state file, one scheduler query per interval for
 * every waiting variant, a failed job's one line, and a resume that
 * submits again only what failed.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../../src/errors';
import { TEMP_MARKER } from '../../src/util/files';
import { hostTag } from '../../src/util/process';
import { loadRecipe } from '../../src/recipe/load';
import type { Recipe } from '../../src/recipe/types';
import { awaitJobs, submitNeeded, type SlurmExecution } from '../../src/pipeline/slurm-executor';
import { Poller, cancelAll, jobsDirFor, readJobs, stateFileFor, writeJobs } from '../../src/pipeline/slurm-jobs';
import { parseSlurmSettings, type RunJobs, type VariantJobs } from '../../src/pipeline/slurm-plan';
import { FakeClock } from '../support/fake-clock';
import { FakeProcesses, command, type Call } from '../support/fake-processes';
import { until } from '../support/poll';

const STEM = 'lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py';

/** A scheduler in memory: what squeue and sacct answer, set by the test; sbatch hands out ids. */
class Scheduler {
  queued = new Map<string, string>();
  ended = new Map<string, { state: string; exit: string }>();
  private next = 100;
  readonly processes = new FakeProcesses()
    .on(command('sbatch'), () => ({ stdout: `${this.next++};lumi\n` }))
    .on(command('squeue'), () => ({ stdout: [...this.queued].map(([id, s]) => `${id}|${s}\n`).join('') }))
    .on(command('sacct'), () => ({ stdout: [...this.ended].map(([id, s]) => `${id}|${s.state}|${s.exit}\n`).join('') }))
    .on(command('scontrol'), { stderr: 'Invalid job id specified\n', exit: 1 })
    .on(command('scancel'), (c: Call) => {
      for (const id of c.args) this.queued.delete(id);
      return {};
    });

  end(id: string, state: string, exit = '0:0'): void {
    this.queued.delete(id);
    this.ended.set(id, { state, exit });
  }

  sbatchLines(): string[] {
    return this.processes.callsOf('sbatch').map((c) => c.args.join(' '));
  }
}

let dir: string;
let recipe: Recipe;
beforeAll(async () => {
  recipe = await loadRecipe('mpi4py-cpu');
});
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-executor-unit-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function variant(hash: string): VariantJobs {
  return {
    stem: STEM,
    sif: path.join(dir, `${STEM}-dockerhash-${hash}.sif`),
    archive: path.join(dir, `${STEM}-dockerhash-${hash}.tar`),
    dockerhash: hash,
    // An image ID as the engine gives it: the dockerhash, then the rest of its 64 digits.
    imageId: `sha256:${hash}${'0'.repeat(64 - hash.length)}`,
    tag: `lumi/x:${hash}`,
  };
}

function setup(sched: Scheduler, clock: FakeClock) {
  const exec: SlurmExecution = {
    settings: parseSlurmSettings({ test: { partition: 'debug' } }, 'release.yaml'),
    resume: false,
    pollMs: 2000,
    sifkit: ['/usr/bin/node', '/opt/sifkit/main.js'],
    outDir: dir,
    resultsDir: path.join(dir, 'results'),
    processes: sched.processes,
    clock,
  };
  const jobs: RunJobs = {
    version: 1,
    recipe: recipe.name,
    variants: [variant('aaaaaaaaaaaa'), variant('bbbbbbbbbbbb')],
  };
  const save = () => writeJobs(stateFileFor(dir), jobs);
  return { exec, jobs, save };
}

describe('--on slurm executor', () => {
  it('submits one conversion array, then each test job after its task (afterok), and records them', async () => {
    const sched = new Scheduler();
    const clock = new FakeClock();
    const { exec, jobs, save } = setup(sched, clock);
    const ctx = { recipe, signal: new AbortController().signal };
    await submitNeeded(ctx, jobs, jobs.variants, exec, save);

    const jd = jobsDirFor(dir);
    const stamp = clock.now();
    expect(sched.sbatchLines()).toEqual([
      `--parsable ${jd}/convert-${stamp}.sh`,
      `--parsable --dependency=afterok:100_0 --kill-on-invalid-dep=yes ${jd}/test-${STEM}-aaaaaaaaaaaa-${stamp}/job.sh`,
      `--parsable --dependency=afterok:100_1 --kill-on-invalid-dep=yes ${jd}/test-${STEM}-bbbbbbbbbbbb-${stamp}/job.sh`,
    ]);
    // No job was open yet: the scheduler was not asked.
    expect(sched.processes.callsOf('squeue')).toEqual([]);
    const array = await fs.readFile(path.join(jd, `convert-${stamp}.sh`), 'utf8');
    expect(array).toContain('#SBATCH --array=0-1');
    const saved = await readJobs(stateFileFor(dir));
    expect(saved).toEqual(jobs);
    expect(saved!.variants.map((v) => [v.convert, v.test])).toEqual([
      [
        { id: '100_0', state: 'PENDING', log: `${jd}/logs/convert-${stamp}-0.out`, attempt: 1 },
        {
          id: '101',
          state: 'PENDING',
          log: `${jd}/test-${STEM}-aaaaaaaaaaaa-${stamp}/job.out`,
          attempt: 1,
          workdir: `${jd}/test-${STEM}-aaaaaaaaaaaa-${stamp}`,
        },
      ],
      [
        { id: '100_1', state: 'PENDING', log: `${jd}/logs/convert-${stamp}-1.out`, attempt: 1 },
        {
          id: '102',
          state: 'PENDING',
          log: `${jd}/test-${STEM}-bbbbbbbbbbbb-${stamp}/job.out`,
          attempt: 1,
          workdir: `${jd}/test-${STEM}-bbbbbbbbbbbb-${stamp}`,
        },
      ],
    ]);
    const testScript = await fs.readFile(path.join(jd, `test-${STEM}-aaaaaaaaaaaa-${stamp}`, 'job.sh'), 'utf8');
    expect(testScript).toContain('#SBATCH --partition=debug');
  });

  it('follows every variant with one query per interval; a failed job is one line with its state, exit code and log; resume resubmits only it', async () => {
    const sched = new Scheduler();
    const clock = new FakeClock();
    const { exec, jobs, save } = setup(sched, clock);
    const ac = new AbortController();
    const ctx = { recipe, signal: ac.signal };
    await submitNeeded(ctx, jobs, jobs.variants, exec, save);
    for (const id of ['100_0', '100_1', '101', '102']) sched.queued.set(id, 'PENDING');

    const poller = new Poller(jobs, save, exec.pollMs, ac.signal, exec);
    const [a, b] = jobs.variants;
    const phases: string[] = [];
    const waitA = awaitJobs(a, poller, (p) => phases.push(p));
    const waitB = awaitJobs(b, poller, () => undefined, "sifkit release 'r' --on slurm --resume");
    const failedB = expect(waitB).rejects.toMatchObject({
      code: 'job-failed',
      message: `test job 102 ended FAILED (exit 2:0); log: ${b.test!.log}`,
      hint: "fix the cause, then sifkit release 'r' --on slurm --resume submits it again, alone",
    });

    // Round 1: the conversions run.
    await until(() => clock.sleeping() === 1, 1);
    sched.queued.set('100_0', 'RUNNING');
    sched.queued.set('100_1', 'RUNNING');
    clock.advance(1999);
    expect(sched.processes.callsOf('squeue')).toEqual([]);
    clock.advance(1);
    await until(() => phases.length === 2, 1);
    expect(sched.processes.callsOf('squeue')).toHaveLength(1);
    expect(sched.processes.callsOf('sacct')).toHaveLength(1);

    // Round 2: converted; one test passes, the other fails.
    await until(() => clock.sleeping() === 1, 1);
    for (const id of ['100_0', '100_1']) sched.end(id, 'COMPLETED');
    sched.end('101', 'COMPLETED');
    sched.end('102', 'FAILED', '2:0');
    clock.advance(2000);
    const t = await waitA;
    await failedB;
    expect(t).toMatchObject({ id: '101', state: 'COMPLETED', exitCode: '0:0' });
    expect(phases).toEqual([
      'Slurm: convert queued (job 100_0)',
      'Slurm: convert running (job 100_0)',
      'Slurm: convert done, test done (job 101)',
    ]);
    // Two rounds for two variants: two queries of each kind, not four.
    expect(sched.processes.callsOf('squeue')).toHaveLength(2);
    expect(sched.processes.callsOf('sacct')).toHaveLength(2);
    const saved = await readJobs(stateFileFor(dir));
    expect(saved!.variants.map((v) => [v.convert!.state, v.test!.state, v.test!.exitCode])).toEqual([
      ['COMPLETED', 'COMPLETED', '0:0'],
      ['COMPLETED', 'FAILED', '2:0'],
    ]);

    // A new controller reads the record and submits the failed test again, alone, with no dependency: its conversion is done.
    clock.advance(60_000);
    const again = (await readJobs(stateFileFor(dir)))!;
    const before = sched.sbatchLines().length;
    await submitNeeded(ctx, again, again.variants, exec, () => writeJobs(stateFileFor(dir), again));
    const jd = jobsDirFor(dir);
    expect(sched.sbatchLines().slice(before)).toEqual([
      `--parsable ${jd}/test-${STEM}-bbbbbbbbbbbb-${clock.now()}/job.sh`,
    ]);
    const resumed = (await readJobs(stateFileFor(dir)))!;
    expect(resumed.variants[0]).toEqual(saved!.variants[0]);
    expect(resumed.variants[1].convert).toEqual(saved!.variants[1].convert);
    expect(resumed.variants[1].test).toMatchObject({ id: '103', state: 'PENDING', attempt: 2 });
  });

  it('a failed conversion fails its variant, and resume converts it again with a new test job after it', async () => {
    const sched = new Scheduler();
    const clock = new FakeClock();
    const { exec, jobs, save } = setup(sched, clock);
    const ac = new AbortController();
    const ctx = { recipe, signal: ac.signal };
    jobs.variants.pop();
    await submitNeeded(ctx, jobs, jobs.variants, exec, save);
    sched.end('100_0', 'OUT_OF_MEMORY', '0:125');
    sched.end('101', 'CANCELLED', '0:0');
    const poller = new Poller(jobs, save, exec.pollMs, ac.signal, exec);
    const waiting = awaitJobs(jobs.variants[0], poller, () => undefined);
    const failed = expect(waiting).rejects.toMatchObject({
      message: expect.stringMatching(
        /^convert job 100_0 ended OUT_OF_MEMORY \(exit 0:125\); log: .*convert-.*\d+-0\.out$/,
      ),
    });
    await until(() => clock.sleeping() === 1, 1);
    clock.advance(2000);
    await failed;

    clock.advance(1000);
    await submitNeeded(ctx, jobs, jobs.variants, exec, save);
    expect(sched.sbatchLines().slice(2)).toEqual([
      expect.stringMatching(/^--parsable .*\/convert-.*\d+\.sh$/),
      expect.stringMatching(/^--parsable --dependency=afterok:102_0 --kill-on-invalid-dep=yes .*\/job\.sh$/),
    ]);
    expect(jobs.variants[0]).toMatchObject({ convert: { id: '102_0', attempt: 2 }, test: { id: '103', attempt: 1 } });
  });

  it('Ctrl-C while following: the wait ends with the run’s reason, and cancelAll cancels and records every open job', async () => {
    const sched = new Scheduler();
    const clock = new FakeClock();
    const { exec, jobs, save } = setup(sched, clock);
    const ac = new AbortController();
    await submitNeeded({ recipe, signal: ac.signal }, jobs, jobs.variants, exec, save);
    sched.end('100_0', 'COMPLETED');
    sched.end('101', 'COMPLETED');
    for (const id of ['100_1', '102']) sched.queued.set(id, 'PENDING');
    const poller = new Poller(jobs, save, exec.pollMs, ac.signal, exec);
    const waiting = awaitJobs(jobs.variants[1], poller, () => undefined);
    await until(() => clock.sleeping() === 1, 1);
    const reason = new Error('interrupted by SIGINT');
    ac.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    // The first variant's jobs already ended in the scheduler, but the run had not asked yet: all four are open in the record.
    expect(await cancelAll(jobs, exec)).toEqual(['100_0', '101', '100_1', '102']);
    expect(sched.processes.lines().at(-1)).toBe('scancel 100_0 101 100_1 102');
    expect(jobs.variants.map((v) => [v.convert!.state, v.test!.state])).toEqual([
      ['CANCELLED', 'CANCELLED'],
      ['CANCELLED', 'CANCELLED'],
    ]);
  });
});

describe('the state file', () => {
  it('is read back only when it fits its schema: a name that would climb out of the jobs directory, or text that is not JSON, is one line (exit 2)', async () => {
    const file = stateFileFor(dir);
    const good: RunJobs = { version: 1, recipe: 'mpi4py-cpu', variants: [variant('aaaaaaaaaaaa')] };
    await writeJobs(file, good);
    expect(await readJobs(file)).toEqual(good);

    await writeJobs(file, { ...good, variants: [{ ...variant('aaaaaaaaaaaa'), stem: '../../elsewhere' }] });
    const climbing = readJobs(file);
    await expect(climbing).rejects.toBeInstanceOf(InputError);
    await expect(climbing).rejects.toMatchObject({ code: 'bad-jobs-file', message: expect.stringMatching(/stem/) });

    await fs.writeFile(file, '{"version": 1, "variants": [');
    await expect(readJobs(file)).rejects.toMatchObject({ code: 'bad-jobs-file', exitCode: 2 });
    expect(await readJobs(path.join(dir, 'none.json'))).toBeUndefined();
  });

  it("is written after the temp files a killed controller left here are gone: a dead process's of this host, of any name; not a live one's, nor another host's", async () => {
    const jobsDir = jobsDirFor(dir);
    await fs.mkdir(jobsDir, { recursive: true });
    // A pid that was just alive and has ended.
    const dead = spawnSync('true').pid as number;
    const host = hostTag();
    const names = {
      deadState: `.jobs.json${TEMP_MARKER}${host}-${dead}-0a1b2c3d`,
      deadScript: `.convert-x-1.sh${TEMP_MARKER}${host}-${dead}-deadbeef`,
      live: `.jobs.json${TEMP_MARKER}${host}-${process.pid}-01234567`,
      otherHost: `.jobs.json${TEMP_MARKER}elsewhere-${dead}-01234567`,
      plain: 'convert-x-1.sh',
    };
    for (const n of Object.values(names)) await fs.writeFile(path.join(jobsDir, n), 'x');
    await writeJobs(stateFileFor(dir), { version: 1, recipe: 'mpi4py-cpu', variants: [] });
    const left = await fs.readdir(jobsDir);
    expect(left).not.toContain(names.deadState);
    expect(left).not.toContain(names.deadScript);
    expect(left).toEqual(expect.arrayContaining([names.live, names.otherHost, names.plain, 'jobs.json']));
  });
});
