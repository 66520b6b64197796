/**
 * The pure parts of the CLI's error path and of reading data that decides
 * (issue 32 and 28 re-check): usage lines and their hints, the JSON switch
 * and `--`, numbers from the environment, a verdict file of the wrong
 * shape.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { commandPath, refuseRepeatedFlags, usageLine, wantsJson } from '../../src/cli/usage';
import { msFromEnv } from '../../src/util/env';
import { readVerdict, SCANNER_VERSION } from '../../src/engine/verdict';
import { InputError } from '../../src/errors';

function program(): Command {
  const p = new Command('sifkit').exitOverride();
  const host = p.command('host');
  host.command('snapshot').option('--bind <dirs>').option('--json');
  p.command('status').option('--root <dir>').option('--json');
  p.command('render').option('--set <kv>', 'repeatable', (v: string, prev: string[] = []) => [...prev, v]);
  refuseRepeatedFlags(p);
  return p;
}

describe('usage errors', () => {
  it('fold the suggestion into the line and hint the help of the command meant', () => {
    const err = new CommanderError(
      2,
      'commander.unknownOption',
      "error: unknown option '--roott'\n(Did you mean --root?)",
    );
    expect(usageLine(err, ['status'])).toEqual({
      code: 'usage-unknown-option',
      message: "unknown option '--roott' (did you mean --root?)",
      hint: 'sifkit help status shows the usage',
      exitCode: 2,
    });
    expect(usageLine(new CommanderError(1, 'commander.unknownCommand', "error: unknown command 'x'"), []).hint).toBe(
      'sifkit --help shows the usage',
    );
  });

  it('find the deepest command and --json, neither after --', () => {
    const p = program();
    expect(commandPath(p, ['host', 'snapshott', '--json'])).toEqual(['host']);
    expect(commandPath(p, ['host', 'snapshot', '--', 'status'])).toEqual(['host', 'snapshot']);
    expect([wantsJson(['status', '--json']), wantsJson(['status', '--', '--json'])]).toEqual([true, false]);
  });

  it('refuse a flag of one value given twice, before the action; repeatable flags and switches stay', () => {
    const p = program();
    expect(() => p.parse(['status', '--root', 'a', '--root=b'], { from: 'user' })).toThrow(
      new InputError('repeated-option', '--root was given twice ("a", then "b"): give it once'),
    );
    const q = program();
    q.parse(['render', '--set', 'a=1', '--set', 'b=2'], { from: 'user' });
    expect(q.commands.find((c) => c.name() === 'render')?.opts()).toEqual({ set: ['a=1', 'b=2'] });
    const r = program();
    r.parse(['host', 'snapshot', '--json', '--json'], { from: 'user' });
  });
});

describe('milliseconds from the environment', () => {
  it('take whole numbers, the default when unset or empty, and refuse anything else in one line', () => {
    expect(msFromEnv('X_MS', 5, {}, {})).toBe(5);
    expect(msFromEnv('X_MS', 5, {}, { X_MS: '' })).toBe(5);
    expect(msFromEnv('X_MS', 5, {}, { X_MS: ' 0 ' })).toBe(0);
    for (const bad of ['2m', 'NaN', '-1', '1e3', '1.5', 'Infinity', '0x10'])
      expect(() => msFromEnv('X_MS', 5, {}, { X_MS: bad })).toThrow(
        `X_MS=${JSON.stringify(bad)} is not a whole number of milliseconds`,
      );
    expect(() => msFromEnv('X_MS', 5, { min: 1 }, { X_MS: '0' })).toThrow('of at least 1');
  });
});

describe('data that decides, checked before it does', () => {
  it('a verdict file whose passed is the string "false" is no verdict (it was a pass: truthy)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h62-verdict-'));
    try {
      const id = `sha256:${'ab'.repeat(32)}`;
      const good = {
        imageId: id,
        passed: true,
        scanner: SCANNER_VERSION,
        scannedAt: '2026-01-01T00:00:00Z',
        layers: 1,
        files: 2,
        bytes: 3,
      };
      const file = path.join(dir, `${'ab'.repeat(32)}.json`);
      await fs.writeFile(file, JSON.stringify(good));
      expect(await readVerdict(dir, id)).toEqual(good);
      await fs.writeFile(file, JSON.stringify({ ...good, passed: 'false' }));
      expect(await readVerdict(dir, id)).toBeUndefined();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
