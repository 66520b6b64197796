/** The one child-process helper, against real processes. */
import { promises as fs } from 'node:fs';
import { InterruptedError, OperationError } from '../../src/errors';
import { pidAlive, runChild, startChild } from '../../src/util/process';

jest.setTimeout(60_000);

/** Polls until `pid` is gone (it was killed and reaped). */
async function gone(pid: number): Promise<void> {
  while (
    pidAlive(pid) &&
    !(await fs.readFile(`/proc/${pid}/stat`, 'utf8').then(
      (s) => / Z /.test(s),
      () => true,
    ))
  )
    await new Promise((r) => setImmediate(r));
}

describe('startChild / runChild', () => {
  it('returns stdout, and a failure is its last stderr line with the exit code', async () => {
    expect(await runChild('sh', ['-c', 'echo hello'])).toBe('hello\n');
    const p = runChild('sh', ['-c', 'echo progress >&2; echo "fatal: it broke" >&2; exit 3'], { label: 'tool' });
    await expect(p).rejects.toBeInstanceOf(OperationError);
    await expect(p).rejects.toMatchObject({ code: 'tool-failed', message: 'tool failed (exit 3): fatal: it broke' });
  });

  it('a missing command says so, with the hint given', async () => {
    const p = runChild('/nonexistent/bin/tool', [], { missing: { code: 'no-tool', hint: 'install it' } });
    await expect(p).rejects.toMatchObject({
      code: 'no-tool',
      hint: 'install it',
      message: 'tool is not installed here (/nonexistent/bin/tool not found)',
    });
  });

  it('keeps only a bounded tail of a flood of stderr', async () => {
    const c = startChild('sh', [
      '-c',
      'i=0; while [ $i -lt 3000 ]; do echo "line $i of noise" >&2; i=$((i+1)); done; echo last words >&2; exit 1',
    ]);
    await expect(c.done).rejects.toMatchObject({ message: 'sh failed (exit 1): last words' });
    expect(c.stderrTail().length).toBeLessThanOrEqual(8192);
  });

  it('abort kills the child and rejects as interrupted', async () => {
    const ac = new AbortController();
    const c = startChild('sleep', ['600'], { signal: ac.signal });
    await new Promise((r) => c.child.once('spawn', r));
    ac.abort(new InterruptedError('interrupted by SIGTERM'));
    await expect(c.done).rejects.toMatchObject({ message: 'interrupted by SIGTERM', exitCode: 130 });
    await gone(c.child.pid!);
  });

  it('a time limit kills the child and says so', async () => {
    const p = runChild('sh', ['-c', 'echo waiting >&2; exec sleep 600'], { timeoutMs: 300, label: 'scontrol' });
    await expect(p).rejects.toMatchObject({ message: 'scontrol timed out after 0.3 s: waiting' });
  });

  it('a child that stops reading its stdin: its exit status is the error, the broken pipe never escapes', async () => {
    const c = startChild('sh', ['-c', 'head -c 1 >/dev/null; echo "refused the rest" >&2; exit 4'], { stdin: 'pipe' });
    const chunk = Buffer.alloc(1 << 16);
    // Write until the pipe breaks (EPIPE) or the child is gone.
    const writing = (async () => {
      for (let i = 0; i < 256 && c.stdin!.writable; i++) {
        if (!c.stdin!.write(chunk))
          await new Promise((r) => {
            c.stdin!.once('drain', r);
            c.stdin!.once('close', r);
          });
      }
    })();
    await expect(c.done).rejects.toMatchObject({ message: 'sh failed (exit 4): refused the rest' });
    await writing;
  });
});
