/**
 * The launcher's word that stdout was closed at start: the first write to
 * stdout fails with one line's reason, and the word is not passed on to
 * the commands sifkit runs. Without it, stdout is left alone.
 */
import { PassThrough } from 'node:stream';
import { failClosedStdout } from '../../src/cli/stdio';

function stream(): NodeJS.WriteStream {
  return new PassThrough() as unknown as NodeJS.WriteStream;
}

describe('a stdout closed at start', () => {
  it('fails the first write with EBADF and its reason, and takes the word out of the environment', async () => {
    const out = stream();
    const env: NodeJS.ProcessEnv = { SIFKIT_STDOUT_CLOSED: '1', OTHER: 'x' };
    failClosedStdout(out, env);
    expect(env).toEqual({ OTHER: 'x' });
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => out.on('error', resolve));
    expect(out.write('result\n')).toBe(false);
    expect(await failed).toMatchObject({
      code: 'EBADF',
      message: 'it was closed when sifkit started (>&-); to discard the output, send it to /dev/null',
    });
  });
  it('leaves stdout alone without the word', () => {
    const out = stream();
    const write = out.write;
    failClosedStdout(out, {});
    expect(out.write).toBe(write);
  });
});
