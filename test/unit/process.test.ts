/** startChild / runChild's own logic, over programs and time in memory. */
import { InterruptedError, OperationError } from '../../src/errors';
import { runChild, startChild } from '../../src/util/process';
import { FakeClock } from '../support/fake-clock';
import { FakeProcesses, command } from '../support/fake-processes';
import { until } from '../support/poll';

describe('startChild / runChild (in memory)', () => {
  it('returns stdout and passes the environment and directory it was given', async () => {
    const processes = new FakeProcesses().on(command('tool', 'hello'), { stdout: 'hello\n' });
    expect(await runChild('/usr/bin/tool', ['hello'], { processes, env: { A: '1' }, cwd: '/w' })).toBe('hello\n');
    expect(processes.calls[0]).toMatchObject({
      cmd: '/usr/bin/tool',
      name: 'tool',
      env: { A: '1' },
      cwd: '/w',
      ended: { code: 0, signal: null },
    });
  });

  it('a failure is its last stderr line with the exit code, with the code and hint given', async () => {
    const processes = new FakeProcesses().on(command('tool'), { stderr: 'progress\nfatal: it broke\n\n', exit: 3 });
    const p = runChild('tool', [], { processes, failCode: 'tool-broke', hint: 'look at it' });
    await expect(p).rejects.toBeInstanceOf(OperationError);
    await expect(p).rejects.toMatchObject({
      code: 'tool-broke',
      hint: 'look at it',
      message: 'tool failed (exit 3): fatal: it broke',
    });
  });

  it('says so when stderr is empty', async () => {
    const processes = new FakeProcesses().on(command('quiet'), { exit: 1 });
    await expect(runChild('quiet', [], { processes, label: 'the tool' })).rejects.toMatchObject({
      code: 'the tool-failed',
      message: 'the tool failed (exit 1): nothing on stderr',
    });
  });

  it('keeps a bounded tail of a flood of stderr, the last line in the message', async () => {
    const flood = Array.from({ length: 3000 }, (_, i) => `line ${i} of noise`).join('\n') + '\nlast words\n';
    const processes = new FakeProcesses().on(command('sh'), { stderr: flood, exit: 1 });
    const c = startChild('sh', [], { processes });
    await expect(c.done).rejects.toMatchObject({ message: 'sh failed (exit 1): last words' });
    expect(c.stderrTail().length).toBeLessThanOrEqual(8192);
    expect(c.stderrTail().endsWith('last words\n')).toBe(true);
  });

  it('a missing command says so, with the code and hint given, or its own words', async () => {
    const processes = new FakeProcesses().missing('tool');
    await expect(
      runChild('/nonexistent/bin/tool', [], { processes, missing: { code: 'no-tool', hint: 'install it' } }),
    ).rejects.toMatchObject({
      code: 'no-tool',
      hint: 'install it',
      message: 'tool is not installed here (/nonexistent/bin/tool not found)',
    });
    await expect(runChild('tool', [], { processes })).rejects.toMatchObject({ code: 'no-tool' });
    await expect(
      runChild('tool', [], { processes, missing: { code: 'x', message: 'no tool, sorry' } }),
    ).rejects.toMatchObject({ code: 'x', message: 'no tool, sorry' });
  });

  it('a time limit kills it (SIGKILL) and says so, with its last stderr line', async () => {
    const clock = new FakeClock();
    const processes = new FakeProcesses().on(command('scontrol'), { stderr: 'waiting\n', hang: true });
    const c = startChild('scontrol', ['ping'], { processes, clock, timeoutMs: 300 });
    await until(() => c.stderrTail() === 'waiting\n', 1);
    clock.advance(299);
    expect(processes.calls[0].ended).toBeUndefined();
    clock.advance(1);
    await expect(c.done).rejects.toMatchObject({
      code: 'scontrol-failed',
      message: 'scontrol timed out after 0.3 s: waiting',
    });
    expect(processes.calls[0].ended).toEqual({ code: null, signal: 'SIGKILL' });
    expect(clock.pending()).toBe(0);
  });

  it('a child that ends in time leaves no timer behind', async () => {
    const clock = new FakeClock();
    const processes = new FakeProcesses().on(command('fast'), {});
    await runChild('fast', [], { processes, clock, timeoutMs: 60_000 });
    expect(clock.pending()).toBe(0);
  });

  it('a signal from elsewhere is named', async () => {
    const processes = new FakeProcesses().on(command('victim'), { stderr: 'about to go\n', hang: true });
    const c = startChild('victim', [], { processes });
    await until(() => c.stderrTail() !== '', 1);
    processes.children[0].kill('SIGTERM');
    await expect(c.done).rejects.toMatchObject({ message: 'victim was killed by SIGTERM: about to go' });
  });

  it('abort kills it (SIGKILL) and rejects with the run’s reason, or as interrupted', async () => {
    const processes = new FakeProcesses().on(command('sleep'), { hang: true });
    const ac = new AbortController();
    const c = startChild('sleep', ['600'], { processes, signal: ac.signal });
    await new Promise((r) => c.child.once('spawn', r));
    ac.abort(new InterruptedError('interrupted by SIGTERM'));
    await expect(c.done).rejects.toMatchObject({ message: 'interrupted by SIGTERM', exitCode: 130 });
    expect(processes.calls[0].ended).toEqual({ code: null, signal: 'SIGKILL' });

    const plain = new AbortController();
    const d = startChild('sleep', ['600'], { processes, signal: plain.signal });
    plain.abort();
    await expect(d.done).rejects.toBeInstanceOf(InterruptedError);
  });

  it('an already aborted run kills the child at once', async () => {
    const processes = new FakeProcesses().on(command('sleep'), { hang: true });
    const ac = new AbortController();
    ac.abort();
    await expect(startChild('sleep', ['600'], { processes, signal: ac.signal }).done).rejects.toBeInstanceOf(
      InterruptedError,
    );
    expect(processes.calls[0].ended?.signal).toBe('SIGKILL');
  });

  it('a child that stops reading its stdin: its exit status is the error, the broken pipe never escapes', async () => {
    const processes = new FakeProcesses().on(command('sh'), {
      readStdinBytes: 1,
      stderr: 'refused the rest\n',
      exit: 4,
    });
    const c = startChild('sh', [], { processes, stdin: 'pipe' });
    const failed = expect(c.done).rejects.toMatchObject({ message: 'sh failed (exit 4): refused the rest' });
    const chunk = Buffer.alloc(1 << 16);
    let broke: unknown;
    c.stdin!.on('error', (e) => (broke = e));
    // Write until the pipe breaks or the child is gone.
    while (!broke && processes.calls[0].ended === undefined) {
      c.stdin!.write(chunk);
      await new Promise((r) => setImmediate(r));
    }
    await failed;
  });

  it('a child that exits 0 after its stdin broke succeeds: the pipe is not the error', async () => {
    const processes = new FakeProcesses().on(command('head'), { readStdinBytes: 1 });
    const c = startChild('head', [], { processes, stdin: 'pipe' });
    c.stdin!.write(Buffer.alloc(10));
    await until(() => processes.calls[0].ended !== undefined, 1);
    c.stdin!.write(Buffer.alloc(10));
    await expect(c.done).resolves.toBeUndefined();
  });

  it('feeds stdin through to a program that reads it all', async () => {
    const processes = new FakeProcesses().on(command('cat'), { consumeStdin: true });
    const c = startChild('cat', [], { processes, stdin: 'pipe' });
    c.stdin!.end('all of it');
    await c.done;
    expect(processes.calls[0].stdin.toString()).toBe('all of it');
  });
});
