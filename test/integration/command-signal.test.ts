/**
 * A command's signal has one abort listener per running child and stream,
 * by design: a release with a few jobs has more than node's leak warning
 * allows (10), and that warning must not reach the user's stderr. Run in a
 * node of its own (jest's sandbox does not show process warnings).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { CLI } from '../support/cli';

it("a command's signal takes a listener per running child without node's leak warning", () => {
  const run = path.join(path.dirname(CLI), 'run.js');
  const script = `
    const { runCommand } = require(${JSON.stringify(run)});
    runCommand(async (io) => {
      for (let i = 0; i < 64; i++) io.signal.addEventListener('abort', () => undefined);
      return 0;
    }).then((code) => setImmediate(() => process.stdout.write('exit ' + code)));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(r.stdout).toBe('exit 0');
  expect(r.stderr).toBe('');
});

it('a command whose work can never finish (nothing left to wait on) exits 1 with one line, never 0', () => {
  const run = path.join(path.dirname(CLI), 'run.js');
  const script = `
    const { runCommand } = require(${JSON.stringify(run)});
    runCommand(() => new Promise(() => undefined)).then((code) => (process.exitCode = code));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(r.status).toBe(1);
  expect(r.stderr).toBe(
    'sifkit: error: the command stopped with its work unfinished (nothing left to wait on); nothing was published\n',
  );
});

it('a command that finishes leaves the exit code its own, the stall guard gone', () => {
  const run = path.join(path.dirname(CLI), 'run.js');
  const script = `
    const { runCommand } = require(${JSON.stringify(run)});
    runCommand(async () => 0).then((code) => (process.exitCode = code));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect([r.status, r.stderr]).toEqual([0, '']);
});
