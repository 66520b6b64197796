/**
 * What happens when stdout or stderr cannot be written: a reader that went
 * away (`sifkit status | head -1`) or a full disk (`> /dev/full`). Node
 * would throw the stream's error as an uncaught exception, a stack trace
 * in the middle of a command that may be changing the tree. Instead the
 * command runs to its end (a change is never cut short by its own
 * output), what is left to print is dropped, and:
 * - a closed pipe is the reader's choice: nothing more is said, the exit
 *   code is the command's own;
 * - any other failure (ENOSPC, EIO) loses output the user asked for: one
 *   line on stderr and exit 1, even if the command itself succeeded.
 */
import { ExitCode, fromSystemError } from '../index';

/**
 * A stdout the caller closed (`sifkit status >&-`), which the launcher
 * (bin/sifkit) saw before node reopened it on /dev/null: the first write
 * fails, as a C program's write meets EBADF, and guardOutput tells it. A
 * command that prints nothing on stdout is not failed by it.
 */
export function failClosedStdout(stdout: NodeJS.WriteStream = process.stdout, env = process.env): void {
  if (env.SIFKIT_STDOUT_CLOSED !== '1') return;
  // Not for the commands sifkit runs: their stdout is their own.
  delete env.SIFKIT_STDOUT_CLOSED;
  const closed = Object.assign(
    new Error('it was closed when sifkit started (>&-); to discard the output, send it to /dev/null'),
    {
      code: 'EBADF',
      closedAtStart: true,
    },
  );
  stdout.write = (() => {
    stdout.destroy(closed);
    return false;
  }) as typeof stdout.write;
}

export function guardOutput(
  streams: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process,
  proc: Pick<NodeJS.Process, 'on' | 'exitCode'> = process,
): void {
  let lost: string | undefined;
  const onError = (which: 'stdout' | 'stderr') => (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || lost) return;
    const why = (e as { closedAtStart?: boolean }).closedAtStart
      ? e.message
      : (fromSystemError(e)?.message.replace(/^cannot \S+: /, '') ?? e.message);
    lost = `cannot write to ${which}: ${why}`;
    // stderr may be the stream that failed; the exit code says it either way.
    if (which === 'stdout') streams.stderr.write(`sifkit: error: ${lost}\n`);
  };
  streams.stdout.on('error', onError('stdout'));
  streams.stderr.on('error', onError('stderr'));
  proc.on('exit', () => {
    if (lost && !proc.exitCode) proc.exitCode = ExitCode.failed;
  });
}
