/**
 * Cuts a local TCP port off the network for a while: an iptables rule on
 * OUTPUT that answers every connection to it with a reset, as a host
 * whose route to the upstream is gone. The process listening there keeps
 * running (so a test can count what still reaches it: nothing). The rule
 * carries a comment unique to the caller, and `restore` deletes exactly
 * that rule; tests call it in `finally`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Cut {
  restore(): Promise<void>;
}

export async function cutPort(port: number, tag: string): Promise<Cut> {
  // -w: wait for the xtables lock (the Docker engine takes it too).
  const rule = (op: '-I' | '-D') => [
    '-w',
    op,
    'OUTPUT',
    '-p',
    'tcp',
    '-d',
    '127.0.0.1',
    '--dport',
    String(port),
    '-m',
    'comment',
    '--comment',
    tag,
    '-j',
    'REJECT',
    '--reject-with',
    'tcp-reset',
  ];
  await run('iptables', rule('-I'));
  let restored = false;
  return {
    restore: async () => {
      if (restored) return;
      restored = true;
      await run('iptables', rule('-D'));
    },
  };
}
