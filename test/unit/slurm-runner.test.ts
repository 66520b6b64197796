/**
 * The Slurm runner and the job commands over programs and time in memory:
 * what is run, how its answers are read, how a job's end is judged.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SlurmProfile } from '../../src/recipe/testing';
import { runSlurm, type SlurmJobInput } from '../../src/checks/slurm';
import { cancelJobs, jobStates, submitJob } from '../../src/slurm/client';
import { parseChecks } from '../../src/recipe/checks';
import { InterruptedError, OperationError } from '../../src/errors';
import { FakeClock } from '../support/fake-clock';
import { FakeProcesses, command, type Call } from '../support/fake-processes';
import { until } from '../support/poll';

const PROFILE: SlurmProfile = {
  partition: 'debug',
  sbatch: ['--exclusive'],
  srun: 'srun -N {nodes} -n {ranks}',
  container: 'singularity exec {sif}',
  launcher: '',
  cleanup: '',
};

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-slurm-unit-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function job(raw: unknown[]): SlurmJobInput {
  return {
    name: 'sifkit-test-abc',
    workdir: path.join(dir, 'job'),
    checks: parseChecks(raw, 'r'),
    profile: PROFILE,
    sif: '/appl/x.sif',
  };
}

/** What a step leaves in the job's directory: its output, exit status and times. */
function stepFiles(workdir: string, name: string, rc: number, out: string, ms = 1500): Record<string, string> {
  const f = (ext: string) => path.join(workdir, `${name}.${ext}`);
  return { [f('out')]: out, [f('rc')]: `${rc}\n`, [f('start')]: '1000000\n', [f('end')]: `${1000000 + ms}\n` };
}

const show = (state: string, exit = '0:0') => ({
  stdout: `JobId=123 JobName=sifkit-test-abc JobState=${state} Reason=None ExitCode=${exit}\n`,
});

describe('runSlurm', () => {
  it('submits the batch script, polls until the job ends, and judges each step by its files', async () => {
    const j = job([
      { name: 'hello', command: 'echo hi', expect: 'hi', ranks: 2, timeout: 10 },
      { name: 'broken', command: 'false', timeout: 20 },
    ]);
    const clock = new FakeClock();
    const processes = new FakeProcesses()
      // The job "runs" when submitted: its steps leave their files.
      .on(command('sbatch'), {
        stdout: '123;cluster\n',
        writes: () => ({
          ...stepFiles(j.workdir, 'hello', 0, 'hi there\n'),
          ...stepFiles(j.workdir, 'broken', 3, 'oops\n'),
        }),
      })
      .on(command('scontrol', 'show', 'job', '-o', '123'), show('RUNNING'), 1)
      .on(command('scontrol', 'show', 'job', '-o', '123'), show('COMPLETED'));
    const states: string[] = [];
    const running = runSlurm(j, { processes, clock, pollMs: 5000, onState: (s) => states.push(s) });
    await until(() => clock.sleeping() === 1, 1);
    expect(states).toEqual(['RUNNING']);
    clock.advance(4999);
    expect(processes.callsOf('scontrol')).toHaveLength(1);
    clock.advance(1);
    const r = await running;
    expect(processes.lines()).toEqual([
      `sbatch --parsable ${j.workdir}/job.sh`,
      'scontrol show job -o 123',
      'scontrol show job -o 123',
    ]);
    expect(states).toEqual(['RUNNING', 'COMPLETED']);
    expect(r).toMatchObject({ jobId: '123', state: 'COMPLETED', workdir: j.workdir });
    expect(r.results.map((x) => [x.name, x.passed, x.outcome, x.reason, x.durationMs])).toEqual([
      ['hello', true, 'passed', undefined, 1500],
      ['broken', false, 'failed', 'exit status 3', 1500],
    ]);
    // The steps the job runs: srun with the check's ranks, in its container, under a time limit with grace.
    const script = await fs.readFile(path.join(j.workdir, 'job.sh'), 'utf8');
    expect(script).toContain(
      "timeout --signal=KILL 40 srun -N 1 -n 2 singularity exec '/appl/x.sif' '/myrun/check-hello.sh' > 'hello.out' 2>&1 &",
    );
    expect(script).toContain(
      "timeout --signal=KILL 50 srun -N 1 -n 1 singularity exec '/appl/x.sif' '/myrun/check-broken.sh' > 'broken.out' 2>&1 &",
    );
    expect(script).toContain('#SBATCH --exclusive');
    expect((await fs.stat(path.join(j.workdir, 'check-hello.sh'))).mode & 0o777).toBe(0o755);
  });

  it('an output that lacks what the check expects fails it', async () => {
    const j = job([{ name: 'hello', command: 'echo hi', expect: 'hello world' }]);
    const processes = new FakeProcesses()
      .on(command('sbatch'), { stdout: '7\n', writes: () => stepFiles(j.workdir, 'hello', 0, 'hi\n') })
      .on(command('scontrol'), { stdout: 'JobId=7 JobState=COMPLETED\n' });
    const r = await runSlurm(j, { processes, clock: new FakeClock() });
    expect(r.results[0]).toMatchObject({ passed: false, reason: 'output lacks "hello world"' });
  });

  it('a job that ended without running its steps: each check says how (timeout, cancelled, node failure)', async () => {
    for (const [state, outcome] of [
      ['TIMEOUT', 'timeout'],
      ['CANCELLED', 'cancelled'],
      ['NODE_FAIL', 'node-failure'],
    ]) {
      const j = job([{ name: 'c', command: 'x', timeout: 30 }]);
      const processes = new FakeProcesses()
        .on(command('sbatch'), { stdout: '9\n' })
        .on(command('scontrol'), show(state));
      const r = await runSlurm(j, { processes, clock: new FakeClock() });
      expect([r.state, r.results[0].outcome, r.results[0].passed]).toEqual([state, outcome, false]);
    }
  });

  it('the check running when the job was cut short is judged by how the job ended, even if its step left a status', async () => {
    // scancel signals every process of the job: the step can die and write its status before the trap acts.
    for (const [state, outcome] of [
      ['CANCELLED', 'cancelled'],
      ['TIMEOUT', 'timeout'],
    ]) {
      const j = job([
        { name: 'ok', command: 'true' },
        { name: 'broken', command: 'false' },
        { name: 'long', command: 'sleep 300' },
        { name: 'later', command: 'true' },
      ]);
      const processes = new FakeProcesses()
        .on(command('sbatch'), {
          stdout: '5\n',
          writes: () => ({
            ...stepFiles(j.workdir, 'ok', 0, ''),
            ...stepFiles(j.workdir, 'broken', 3, ''),
            ...stepFiles(j.workdir, 'long', 1, 'Terminated\n'),
          }),
        })
        .on(command('scontrol'), show(state));
      const r = await runSlurm(j, { processes, clock: new FakeClock() });
      // The one that failed by itself stays failed: the script had gone on to the next.
      expect(r.results.map((x) => [x.name, x.outcome])).toEqual([
        ['ok', 'passed'],
        ['broken', 'failed'],
        ['long', outcome],
        ['later', outcome],
      ]);
    }
  });

  it('a job that ran to its end keeps its last check failing on its own', async () => {
    const j = job([{ name: 'last', command: 'false' }]);
    const processes = new FakeProcesses()
      .on(command('sbatch'), {
        stdout: '6\n',
        writes: () => ({ ...stepFiles(j.workdir, 'last', 2, ''), [path.join(j.workdir, 'job.done')]: 'done\n' }),
      })
      .on(command('scontrol'), show('FAILED', '1:0'));
    const r = await runSlurm(j, { processes, clock: new FakeClock() });
    expect(r.results[0]).toMatchObject({ outcome: 'failed', reason: 'exit status 2' });
  });

  it('a job the controller forgot, gone from the queue too, has ended', async () => {
    const j = job([{ name: 'c', command: 'x' }]);
    const processes = new FakeProcesses()
      .on(command('sbatch'), { stdout: '11\n', writes: () => stepFiles(j.workdir, 'c', 0, '') })
      .on(command('scontrol'), { stderr: 'slurm_load_jobs error: Invalid job id specified\n', exit: 1 })
      .on(command('squeue'), { stdout: '' });
    const r = await runSlurm(j, { processes, clock: new FakeClock() });
    expect(processes.lines().slice(1)).toEqual(['scontrol show job -o 11', 'squeue -h -j 11 -o %T']);
    expect(r.results[0].passed).toBe(true);
  });

  it('sbatch answering something else than a job id is an error', async () => {
    const processes = new FakeProcesses().on(command('sbatch'), { stdout: 'Submitted batch job 5\n' });
    const p = runSlurm(job([{ name: 'c', command: 'x' }]), { processes, clock: new FakeClock() });
    await expect(p).rejects.toBeInstanceOf(OperationError);
    await expect(p).rejects.toMatchObject({
      code: 'bad-slurm-answer',
      message: 'sbatch answered "Submitted batch job 5", not a job id',
    });
  });

  it('sbatch refusing the job: its own words, one line', async () => {
    const processes = new FakeProcesses().on(command('sbatch'), {
      stderr: 'sbatch: error: Batch job submission failed: Invalid partition name specified\n',
      exit: 1,
    });
    await expect(
      runSlurm(job([{ name: 'c', command: 'x' }]), { processes, clock: new FakeClock() }),
    ).rejects.toMatchObject({
      code: 'slurm-failed',
      message: 'sbatch failed (exit 1): sbatch: error: Batch job submission failed: Invalid partition name specified',
    });
  });

  it('no Slurm here: says so, with a hint', async () => {
    const processes = new FakeProcesses().missing('sbatch');
    await expect(
      runSlurm(job([{ name: 'c', command: 'x' }]), { processes, clock: new FakeClock() }),
    ).rejects.toMatchObject({
      code: 'no-slurm',
      message: 'sbatch is not installed here',
      hint: expect.stringContaining('--runner local'),
    });
  });

  it('a controller that does not answer is slurm-down, and the job is cancelled', async () => {
    const processes = new FakeProcesses()
      .on(command('sbatch'), { stdout: '12\n' })
      .on(command('scontrol'), {
        stderr: 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n',
        exit: 1,
      })
      .on(command('scancel'), {});
    await expect(
      runSlurm(job([{ name: 'c', command: 'x' }]), { processes, clock: new FakeClock() }),
    ).rejects.toMatchObject({ code: 'slurm-down' });
    expect(processes.lines().at(-1)).toBe('scancel 12');
  });

  it('Ctrl-C while polling cancels the job and rejects as interrupted', async () => {
    const clock = new FakeClock();
    const processes = new FakeProcesses()
      .on(command('sbatch'), { stdout: '13\n' })
      .on(command('scontrol'), show('PENDING'))
      .on(command('scancel'), {});
    const ac = new AbortController();
    const p = runSlurm(job([{ name: 'c', command: 'x' }]), { processes, clock, signal: ac.signal });
    await until(() => clock.sleeping() === 1, 1);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(InterruptedError);
    expect(processes.lines()).toEqual([
      expect.stringMatching(/^sbatch --parsable /),
      'scontrol show job -o 13',
      'scancel 13',
    ]);
    expect(clock.pending()).toBe(0);
  });

  it('a job still running past all its checks’ time and ten minutes is cancelled and reported as timed out', async () => {
    const clock = new FakeClock();
    const processes = new FakeProcesses()
      .on(command('sbatch'), { stdout: '14\n' })
      .on(command('scontrol'), show('RUNNING'))
      .on(command('scancel'), {});
    const p = runSlurm(job([{ name: 'c', command: 'x', timeout: 60 }]), { processes, clock, pollMs: 1000 });
    await until(() => clock.sleeping() === 1, 1);
    clock.advance(660_000);
    await until(() => clock.sleeping() === 1, 1);
    expect(processes.callsOf('scancel')).toEqual([]);
    clock.advance(1000);
    const r = await p;
    expect(processes.lines().at(-1)).toBe('scancel 14');
    expect(r.state).toBe('TIMEOUT');
    expect(r.results[0]).toMatchObject({ outcome: 'timeout', passed: false });
  });
});

describe('job commands', () => {
  it('sbatch passes its options before the script and reads the id of a --parsable answer', async () => {
    const processes = new FakeProcesses().on(command('sbatch'), { stdout: '4242;lumi\n' });
    expect(await submitJob('/w/job.sh', ['--dependency=afterok:41_0'], undefined, { processes })).toBe('4242');
    expect(processes.lines()).toEqual(['sbatch --parsable --dependency=afterok:41_0 /w/job.sh']);
  });

  it('scancel names every job at once, and nothing is run for none', async () => {
    const processes = new FakeProcesses().on(command('scancel'), {});
    await cancelJobs([], { processes });
    await cancelJobs(['1_0', '2'], { processes });
    expect(processes.lines()).toEqual(['scancel 1_0 2']);
  });

  it('states: the queue for jobs in it, accounting (with exit codes) for ended ones, scontrol for the rest', async () => {
    const processes = new FakeProcesses()
      .on(command('squeue'), { stdout: '20_0|RUNNING\n' })
      .on(command('sacct'), { stdout: '20_0|PENDING|0:0\n20_1|FAILED|2:0\n21|CANCELLED by 1000|0:15\n' })
      .on(command('scontrol', 'show', 'job', '-o', '22'), { stdout: 'JobId=22 JobState=COMPLETED ExitCode=0:0\n' })
      .on(command('scontrol'), { stderr: 'Invalid job id specified\n', exit: 1 });
    const got = await jobStates(['20_0', '20_1', '21', '22', '23'], undefined, { processes });
    expect(Object.fromEntries(got)).toEqual({
      '20_0': { state: 'RUNNING' },
      '20_1': { state: 'FAILED', exitCode: '2:0' },
      '21': { state: 'CANCELLED', exitCode: '0:15' },
      '22': { state: 'COMPLETED', exitCode: '0:0' },
    });
    expect(processes.lines().slice(0, 2)).toEqual([
      'squeue -h -r -j 20,21,22,23 -o %i|%T',
      'sacct -n -P -X -j 20,21,22,23 -o JobID,State,ExitCode',
    ]);
  });

  it('accounting down is not the end: the queue and scontrol answer', async () => {
    const processes = new FakeProcesses()
      .on(command('squeue'), { stdout: '' })
      .on(command('sacct'), { stderr: 'sacct: error: Problem talking to the database: Connection refused\n', exit: 1 })
      .on(command('scontrol'), (c: Call) => ({ stdout: `JobId=${c.args[3]} JobState=COMPLETED ExitCode=0:0\n` }));
    expect(Object.fromEntries(await jobStates(['30'], undefined, { processes }))).toEqual({
      '30': { state: 'COMPLETED', exitCode: '0:0' },
    });
  });

  it('an answer that does not read is one line naming the command, the line and the field, exit 1', async () => {
    const answers: Array<[string, string, string]> = [
      ['squeue', '20_0|RUNNING\n20_1|running fine\n', "squeue's answer, line 2: State: expected a Slurm job state"],
      ['sacct', '20_0|COMPLETED|0:0\n20_1|FAILED|oops\n', "sacct's answer, line 2: ExitCode: expected an exit code"],
      ['sacct', '<html>proxy error</html>\n', "sacct's answer, line 1: JobID: expected a Slurm job id"],
    ];
    for (const [cmd, stdout, message] of answers) {
      const processes = new FakeProcesses()
        .on(command('squeue'), { stdout: cmd === 'squeue' ? stdout : '' })
        .on(command('sacct'), { stdout: cmd === 'sacct' ? stdout : '' });
      const p = jobStates(['20_0', '20_1'], undefined, { processes });
      await expect(p).rejects.toBeInstanceOf(OperationError);
      await expect(p).rejects.toMatchObject({
        code: 'bad-slurm-answer',
        exitCode: 1,
        message: expect.stringContaining(message),
      });
      await expect(p).rejects.toMatchObject({ message: expect.not.stringContaining('\n') });
    }
  });

  it('a job shown without a state it can read is an error, and the job is cancelled', async () => {
    const processes = new FakeProcesses()
      .on(command('sbatch'), { stdout: '15\n' })
      .on(command('scontrol'), { stdout: 'JobId=15 JobState=Running?\n' })
      .on(command('scancel'), {});
    const p = runSlurm(job([{ name: 'c', command: 'x' }]), { processes, clock: new FakeClock() });
    await expect(p).rejects.toMatchObject({
      code: 'bad-slurm-answer',
      message: expect.stringContaining("scontrol's answer: JobState: expected a Slurm job state"),
    });
    expect(processes.lines().at(-1)).toBe('scancel 15');
  });
});
