/**
 * Issue 32 and 28 re-checked as a support engineer meets sifkit: the
 * mistakes people make at the command line, through the real CLI on a
 * generated tree (no build). Every case: one error line, the documented
 * exit code, the error document under --json, nothing written, and the
 * hint's command run to show it works.
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs, openSync, closeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, runCli, runCliEach, type CliResult } from '../support/cli';
import { genTree, series } from '../support/gentree';
import { until } from '../support/poll';
import { JSON_DOCUMENTS } from '../../src/cli/json-schemas';

jest.setTimeout(300_000);

const STEM = 'lumi-mpi4py-rocm-6.0.3-python-3.12-mpi4py-3.1.6';
const NAME = `${STEM}-dockerhash-aa0000000000.sif`;

/** The `sifkit: error:` and `sifkit: hint:` lines, and any line a crash would print. */
const told = (stderr: string) =>
  stderr.split('\n').filter((l) => /^sifkit: (error|hint)|^\s+at |node:|\[object Object\]|undefined/.test(l));

/** Runs the CLI with the given stdio and uid, as runCli does otherwise. */
function spawnCli(
  args: string[],
  opts: { stdout?: 'pipe' | number; closeStdout?: boolean; uid?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
      env: { ...process.env, CI: '1', ...opts.env },
      ...(opts.uid !== undefined && { uid: opts.uid, gid: opts.uid }),
    });
    // The reader goes away before the command writes a byte: every write it makes meets a closed pipe.
    if (opts.closeStdout) child.stdout?.destroy();
    let stdout = '';
    let stderr = '';
    if (!opts.closeStdout) child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const isError = (stdout: string) => JSON_DOCUMENTS.error.safeParse(JSON.parse(stdout)).success;

let dir: string;
let root: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h62-mistakes-'));
  await fs.chmod(dir, 0o755); // nobody must reach the tree to be refused by it
  root = path.join(dir, 'tree');
  await genTree(root, series(STEM, '6.0.3', 2, 30, 'aa'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

const linkCount = async (r: string) => (await fs.readdir(path.join(r, 'sif-images'))).length;

describe('usage mistakes: one line, a hint that works, the error document under --json', () => {
  it('a typo in a command or a flag, a subcommand typo, a flag given twice, a flag after --', async () => {
    const other = path.join(dir, 'other');
    const [cmd, sub, twice, dashdash, helpHost, both, idle] = await runCliEach([
      ['statsu', '--root', root],
      ['host', 'snapshott', '--json'],
      ['promote', NAME, '--to', 'sif-images', '--root', root, '--root', other, '--json'],
      ['status', '--root', root, '--', '--json'],
      ['help', 'host', 'record'],
      ['retire', '--apply', '--purge', '--root', root],
      ['retire', '--grace-days', '3', '--root', root, '--json'],
    ]);
    expect({ code: cmd.code, told: told(cmd.stderr) }).toEqual({
      code: 2,
      told: [
        "sifkit: error: unknown command 'statsu' (did you mean status?)",
        'sifkit: hint: sifkit --help shows the usage',
      ],
    });
    expect({ code: sub.code, told: told(sub.stderr), json: isError(sub.stdout) }).toEqual({
      code: 2,
      told: [
        "sifkit: error: unknown command 'snapshott' (did you mean snapshot?)",
        'sifkit: hint: sifkit help host shows the usage',
      ],
      json: true,
    });
    // The hint's command, and help of a subcommand, work.
    expect([helpHost.code, helpHost.stdout]).toEqual([0, expect.stringMatching(/^Usage: sifkit host record/)]);
    expect({ code: twice.code, error: JSON.parse(twice.stdout).error }).toEqual({
      code: 2,
      error: {
        code: 'repeated-option',
        message: `--root was given twice (${JSON.stringify(root)}, then ${JSON.stringify(other)}): give it once`,
      },
    });
    expect([await linkCount(root), await fs.stat(other).catch(() => 'absent')]).toEqual([0, 'absent']);
    // After `--`, --json is an operand, not a flag: status takes none.
    expect({ code: dashdash.code, told: told(dashdash.stderr), stdout: dashdash.stdout }).toEqual({
      code: 2,
      told: [
        "sifkit: error: too many arguments for 'status'. Expected 0 arguments but got 1.",
        'sifkit: hint: sifkit help status shows the usage',
      ],
      stdout: '',
    });
    // Retire flags it would take and not act on (--apply with --purge quarantined nothing, silently).
    expect({ code: both.code, told: told(both.stderr) }).toEqual({
      code: 2,
      told: [
        'sifkit: error: --purge deletes what the quarantine already holds and takes no --apply',
        `sifkit: hint: quarantine first, then purge: sifkit retire --apply --root ${root}, then sifkit retire --purge --root ${root}`,
      ],
    });
    const purge = await runCli(['retire', '--purge', '--root', root]);
    expect([purge.code, purge.stdout]).toEqual([0, `nothing in the quarantine of ${root}: nothing to purge\n`]);
    expect({ code: idle.code, error: JSON.parse(idle.stdout).error.code }).toEqual({ code: 2, error: 'idle-flag' });
  });
});

describe('output that cannot be written', () => {
  it('a reader that went away (| head -1) ends the command quietly with its own exit code; a full disk is one line, exit 1', async () => {
    const closed = await spawnCli(['retire', '--root', root], { closeStdout: true });
    expect({ code: closed.code, told: told(closed.stderr) }).toEqual({ code: 0, told: [] });
    const full = openSync('/dev/full', 'w');
    try {
      const r = await spawnCli(['status', '--root', root, '--json'], { stdout: full });
      expect({ code: r.code, told: told(r.stderr) }).toEqual({
        code: 1,
        told: ['sifkit: error: cannot write to stdout: no space left on device (ENOSPC)'],
      });
    } finally {
      closeSync(full);
    }
  });
});

describe('a tree the user may not write', () => {
  it("as nobody: one line, a hint naming the user and a namei command that shows the tree's modes; nothing changed", async () => {
    const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString());
    const r = await spawnCli(['promote', NAME, '--to', 'sif-images', '--root', root], { uid: nobody });
    const lines = told(r.stderr);
    expect({ code: r.code, n: lines.length }).toEqual({ code: 1, n: 2 });
    expect(lines[0]).toMatch(/^sifkit: error: cannot mkdir .*\/\.sifkit\/\S+: permission denied \(EACCES\)$/);
    expect(lines[1]).toBe(
      `sifkit: hint: sifkit ran as nobody (uid ${nobody}); namei -l ${root}/.sifkit shows each directory's owner and mode: run as a user who may write there, or ask for access`,
    );
    expect(execFileSync('namei', ['-l', `${root}/.sifkit`]).toString()).toMatch(/root root \.sifkit/);
    expect(await linkCount(root)).toBe(0);
  });
});

describe('the tree lock as people meet it', () => {
  const lockDir = () => path.join(root, '.sifkit', 'lock');
  async function holdLock(owner: Record<string, unknown>): Promise<void> {
    await fs.mkdir(lockDir(), { recursive: true });
    await fs.writeFile(path.join(lockDir(), 'owner.json'), JSON.stringify(owner));
  }
  afterEach(() => fs.rm(lockDir(), { recursive: true, force: true }));

  it('a live holder: the waiter says whom it waits for, Ctrl-C stops it (130), a spent wait names tree and holder (3) with a status command that shows it; a killed holder is broken at once', async () => {
    const holder = spawn('sleep', ['600']);
    const gone = new Promise((r) => holder.on('exit', r));
    try {
      await holdLock({
        host: os.hostname(),
        pid: holder.pid,
        user: 'alice',
        command: 'sifkit promote X --to all',
        since: '2026-01-01T00:00:00Z',
        token: 'h62',
      });
      const promote = ['promote', NAME, '--to', 'sif-images', '--root', root];
      let stop: ((sig: NodeJS.Signals) => void) | undefined;
      const waiting = runCli(promote, { onStderr: (s, kill) => /waiting up to 120 s/.test(s) && (stop = kill) });
      await until(() => stop !== undefined);
      stop?.('SIGINT');
      const interrupted = await waiting;
      expect({ code: interrupted.code, told: told(interrupted.stderr), links: await linkCount(root) }).toEqual({
        code: 130,
        told: [expect.stringMatching(/^sifkit: error: interrupted/)],
        links: 0,
      });
      expect(interrupted.stderr).toMatch(
        new RegExp(
          `^sifkit: waiting up to 120 s for the tree's lock, held by alice@\\S+ pid ${holder.pid} \\(sifkit promote X`,
          'm',
        ),
      );

      const [spent, badEnv] = await Promise.all([
        runCli(promote, { env: { SIFKIT_LOCK_WAIT_MS: '0' } }),
        runCli(promote, { env: { SIFKIT_LOCK_WAIT_MS: '2m' } }),
      ]);
      const lines = told(spent.stderr);
      expect(spent.code).toBe(3);
      expect(lines[0]).toMatch(
        new RegExp(`^sifkit: error: the container tree ${root} is locked by alice@\\S+ pid ${holder.pid} `),
      );
      const hinted = /\((sifkit status --root \S+) shows the holder\)/.exec(lines[1] ?? '');
      expect(hinted?.[1]).toBe(`sifkit status --root ${root}`);
      const status = await runCli(hinted?.[1].split(' ').slice(1) ?? []);
      expect([status.code, status.stdout]).toEqual([0, expect.stringMatching(/^lock: held by alice@/)]);
      expect({ code: badEnv.code, told: told(badEnv.stderr) }).toEqual({
        code: 2,
        told: [
          'sifkit: error: SIFKIT_LOCK_WAIT_MS="2m" is not a whole number of milliseconds',
          'sifkit: hint: unset SIFKIT_LOCK_WAIT_MS for the default (120000 ms)',
        ],
      });
      expect(await linkCount(root)).toBe(0);

      holder.kill('SIGKILL');
      await gone;
      const after = await runCli(promote);
      expect({ code: after.code, told: told(after.stderr), links: await linkCount(root) }).toEqual({
        code: 0,
        told: [],
        links: 1,
      });
    } finally {
      holder.kill('SIGKILL');
      await fs.rm(path.join(root, 'sif-images', `${STEM}.sif`), { force: true });
    }
  });

  it('an owner.json of the wrong shapes is an unknown holder: no [object Object] or undefined, status --json matches its schema', async () => {
    // A pid and a token as a lock has them, the rest of other types: shown as text they were `x@[object Object] (undefined…)`.
    await holdLock({ host: { a: 1 }, pid: 4_194_304, user: ['x'], token: 'h62' });
    const [text, json] = await runCliEach([
      ['status', '--root', root],
      ['status', '--root', root, '--json'],
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^lock: held by an unknown process, heartbeat [\d.]+ s ago, live$/);
    expect(text.stdout + text.stderr).not.toMatch(/\[object Object\]|undefined/);
    expect(JSON_DOCUMENTS.status.safeParse(JSON.parse(json.stdout)).success).toBe(true);
  });
});

describe('a full file system', () => {
  let mnt: string | undefined;
  afterAll(() => {
    if (mnt) execFileSync('umount', [mnt]);
  });

  it("the lock's owner file cannot be written: one line naming it, a df hint that runs, nothing left behind", async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root (CI does)');
    mnt = path.join(dir, 'full');
    await fs.mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
    const small = path.join(mnt, 'tree');
    await genTree(small, series(STEM, '6.0.3', 1, 30, 'aa'));
    // Fill it: write until the file system refuses.
    const fh = await fs.open(path.join(mnt, 'fill'), 'w');
    await fh.write(Buffer.alloc(1 << 20)).catch(() => undefined);
    await fh.close();
    const before = (await fs.readdir(path.join(small, '.sifkit'))).sort();
    const r = await runCli(['promote', NAME, '--to', 'sif-images', '--root', small]);
    expect({ code: r.code, told: told(r.stderr) }).toEqual({
      code: 1,
      told: [
        expect.stringMatching(
          new RegExp(
            `^sifkit: error: cannot write ${small}/\\.sifkit/\\S+/owner\\.json: no space left on device \\(ENOSPC\\)$`,
          ),
        ),
        `sifkit: hint: df -h ${small}/.sifkit shows the space left: free some, then run the command again`,
      ],
    });
    expect(execFileSync('df', ['-h', `${small}/.sifkit`]).toString()).toMatch(/tmpfs/);
    expect([(await fs.readdir(path.join(small, '.sifkit'))).sort(), await linkCount(small)]).toEqual([before, 0]);
  });
});
