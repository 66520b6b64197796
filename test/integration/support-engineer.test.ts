/**
 * Issue 32, through the real CLI: what a support engineer runs into. A
 * refused run stays refused (gate verdict in the results, never skipped on
 * a rerun), no tree is made by a typo, results live beside the tree, the
 * report says REFUSED, Ctrl-C in a terminal names the stage and the command
 * that resumes, and the set-up puts `sifkit` on PATH.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, runCli } from '../support/cli';
import { removeTestImages, runId, writeTinyRecipe } from '../support/engine';
import { until } from '../support/poll';
import { TEMP_MARKER } from '../../src/util/files';
import type { ResultsFile } from '../../src/checks/results';

jest.setTimeout(900_000);

const STEM = 'sifkittest-tiny-v-1.0';
/** A check with OSU-shaped output, so the gate has figures to compare. */
const LATENCY_CHECK = `  - { name: lat, command: 'printf "# OSU MPI Latency Test\\n# Size Latency (us)\\n1 5.0\\n2 6.0\\n"', figures: latency }\n`;

/** A baseline ten times faster than the check above can ever be. */
function fastBaseline(): ResultsFile {
  return {
    image: 'older.sif',
    runs: [
      {
        image: 'older.sif',
        stem: 'sifkittest-tiny-v-0.9',
        dockerhash: '000000000000',
        recipe: 'tiny',
        runner: 'local',
        host: 'h',
        started: '2026-01-01T00:00:00.000Z',
        finished: '2026-01-01T00:01:00.000Z',
        passed: true,
        checks: [
          {
            name: 'lat',
            outcome: 'passed',
            passed: true,
            exitCode: 0,
            durationMs: 1,
            tail: '',
            figures: {
              kind: 'latency',
              unit: 'us',
              points: [
                { size: 1, value: 0.5 },
                { size: 2, value: 0.5 },
              ],
            },
          },
        ],
      },
    ],
  };
}

/** test/support's tiny recipe, with the latency check and a 128 MiB file so a conversion lasts long enough to interrupt. */
function writeRecipe(dir: string): Promise<string> {
  return writeTinyRecipe(
    dir,
    `${LATENCY_CHECK}testing:\n  local: { launcher: '' }\n`,
    'head -c 134217728 /dev/urandom > /filler',
  );
}

// Both describes use the same image (same definition): built once, removed at the end.
afterAll(() => removeTestImages());

describe('issue 32: refusals that stick, no accidental trees, results beside the tree', () => {
  let dir: string;
  let other: string;
  let recipe: string;
  let baseline: string;
  const results = () => path.join(dir, 'tree', '.sifkit', 'test-results');
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h32-'));
    other = path.join(dir, 'elsewhere');
    await fs.mkdir(other);
    recipe = await writeRecipe(dir);
    baseline = path.join(dir, 'fast.json');
    await fs.writeFile(baseline, JSON.stringify(fastBaseline()));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('release --root with a typo: one line, exit 2, before any build, and no tree made', async () => {
    const r = await runCli(['release', recipe, '--root', 'tre', '--out', 'sif'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `sifkit: error: no container tree at ${path.join(dir, 'tre')}\nsifkit: hint: create one with sifkit init ${path.join(dir, 'tre')}, or give --root DIR or LUMI_CONTAINER_REPOSITORY_ROOT\n`,
    );
    expect(existsSync(path.join(dir, 'tre'))).toBe(false);
    expect(existsSync(path.join(dir, 'sif'))).toBe(false);
    expect(existsSync(path.join(dir, '.sifkit'))).toBe(false);
  });

  it('sifkit init makes a tree, and says so when one is there', async () => {
    const a = await runCli(['init', 'tree', '--json'], { cwd: dir });
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout)).toEqual({ ok: true, root: path.join(dir, 'tree'), created: true });
    for (const d of ['tested-containers', 'sif-images', 'easybuild-sif-images'])
      expect((await fs.stat(path.join(dir, 'tree', d))).isDirectory()).toBe(true);
    const b = await runCli(['init', 'tree'], { cwd: dir });
    expect(b.stdout).toBe(`a container tree is already at ${path.join(dir, 'tree')}\n`);
  });

  let sif: string;
  it('a gate-refused release is saved as refused, with the figures, and a rerun does not get past it', async () => {
    const first = await runCli(['release', recipe, '--root', 'tree', '--out', 'sif', '--baseline', baseline], {
      cwd: dir,
    });
    expect(first.code).toBe(3);
    expect(first.stderr).toMatch(
      /sifkit: error: 2 figure\(s\) worse than older.sif by more than 10%: worst lat at 2 B, latency 0.5 → 6 .*recorded as refused/,
    );
    expect(first.stdout).toMatch(/\bREFUSED\b/);
    expect(first.stdout).not.toMatch(/FAILED/);
    // Beside the tree, not in the current directory.
    expect(existsSync(path.join(dir, '.sifkit', 'test-results'))).toBe(false);
    const name = (await fs.readdir(results()))[0];
    const doc = JSON.parse(await fs.readFile(path.join(results(), name), 'utf8')) as ResultsFile;
    expect(doc.runs).toHaveLength(1);
    expect(doc.runs[0].passed).toBe(false);
    expect(doc.runs[0].checks.every((c) => c.passed)).toBe(true);
    expect(doc.runs[0].gate).toMatchObject({ verdict: 'refused', tolerance: 0.1, baseline: 'older.sif' });
    expect(doc.runs[0].gate!.regressions.map((x) => [x.check, x.size, x.value])).toEqual([
      ['lat', 1, 5],
      ['lat', 2, 6],
    ]);
    sif = path.join(dir, 'sif', name.replace(/\.json$/, ''));

    // The same command again: the test runs again (never "skipped"), and is refused again.
    const again = await runCli(
      ['release', recipe, '--root', 'tree', '--out', 'sif', '--baseline', baseline, '--json'],
      { cwd: dir },
    );
    expect(again.code).toBe(3);
    const stages = JSON.parse(again.stdout).variants[0].stages;
    expect(stages.test).toMatch(/^REFUSED: 2 figure\(s\) worse/);
    expect(stages.stage).toBe('not reached');
    expect((JSON.parse(await fs.readFile(path.join(results(), name), 'utf8')) as ResultsFile).runs).toHaveLength(2);
  });

  it('stage, from another directory, finds the results beside the tree and refuses the refused run', async () => {
    const r = await runCli(['stage', sif, '--root', path.join(dir, 'tree')], { cwd: other });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^sifkit: error: the latest test run of .* was refused by the regression gate: 2 figure\(s\) worse than older.sif by more than 10%\n/,
    );
  });

  it('a standalone test --tolerance 0 that exits 3 is saved as refused; --no-gate moves past it and stage then works from anywhere', async () => {
    const refused = await runCli(
      [
        'test',
        sif,
        '--recipe',
        recipe,
        '--root',
        path.join(dir, 'tree'),
        '--baseline',
        baseline,
        '--tolerance',
        '0',
        '--json',
      ],
      { cwd: other },
    );
    expect(refused.code).toBe(3);
    const doc = JSON.parse(refused.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.run).toMatchObject({ passed: false, gate: { verdict: 'refused', tolerance: 0 } });
    expect(doc.resultsFile).toBe(path.join(results(), `${path.basename(sif)}.json`));
    const ok = await runCli(['test', sif, '--recipe', recipe, '--root', path.join(dir, 'tree'), '--no-gate'], {
      cwd: other,
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('gate: off (--no-gate)');
    const staged = await runCli(['stage', sif, '--root', path.join(dir, 'tree')], { cwd: other });
    expect(staged.stderr).toBe('');
    expect(staged.code).toBe(0);
    expect(existsSync(path.join(other, '.sifkit'))).toBe(false);
  });

  it('test --root naming no tree refuses before any Slurm job is submitted', async () => {
    const r = await runCli(['test', sif, '--recipe', recipe, '--runner', 'slurm', '--root', 'no-such-tree'], {
      cwd: other,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sifkit: error: no container tree at .*no-such-tree\n/);
    // No job directory anywhere: nothing was written for a job.
    expect(existsSync(path.join(other, '.sifkit'))).toBe(false);
    expect(
      execFileSync('squeue', [
        '-h',
        '-n',
        `sifkit-test-${path.basename(sif).replace(/^.*-dockerhash-|\.sif$/g, '')}`,
      ]).toString(),
    ).toBe('');
  });

  it('with --no-gate the release goes through; status and the report show each run for what it was', async () => {
    const r = await runCli(
      ['release', recipe, '--root', 'tree', '--out', 'sif', '--baseline', baseline, '--no-gate', '--json'],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).variants[0].stages).toMatchObject({
      stage: expect.stringMatching(/^(done|skipped)/),
      promote: 'done',
    });
    const status = JSON.parse((await runCli(['status', '--root', 'tree', '--json'], { cwd: dir })).stdout);
    expect(status.images[0]).toMatchObject({ stem: STEM, test: 'passed' });
    expect((await runCli(['status', '--root', 'tree'], { cwd: dir })).stdout).toMatch(/ok-cached +passed\n/);
    // The architecture by name, as siftool says it.
    // Staged, its SIF lives in the tree only (release removes the --out copy once staged).
    expect(existsSync(sif)).toBe(false);
    const staged = path.join(dir, 'tree', 'tested-containers', path.basename(sif));
    expect((await runCli(['inspect', staged])).stdout).toMatch(/^arch: +amd64$/m);

    // A refused run of another image, kept beside the tree, shows as REFUSED in the report, not PASSED.
    const refusedRun = {
      ...fastBaseline().runs[0],
      image: `${STEM}-dockerhash-111111111111.sif`,
      stem: STEM,
      dockerhash: '111111111111',
      params: { v: '0.9' },
      passed: false,
      finished: '2026-01-02T00:00:00.000Z',
      gate: {
        verdict: 'refused',
        tolerance: 0.1,
        baseline: 'older.sif',
        regressions: [{ check: 'lat', size: 1, kind: 'latency', baseline: 0.5, value: 5, worseBy: 9 }],
      },
    };
    await fs.writeFile(
      path.join(results(), `${refusedRun.image}.json`),
      JSON.stringify({ image: refusedRun.image, runs: [refusedRun] }),
    );
    const rep = await runCli(['report', '--root', path.join(dir, 'tree'), '--out', path.join(dir, 'report')], {
      cwd: other,
    });
    expect(rep.code).toBe(0);
    const html = await fs.readFile(path.join(dir, 'report', 'index.html'), 'utf8');
    const row = (hash: string) => html.split('\n').find((l) => l.startsWith('<tr>') && l.includes(`(${hash})`))!;
    expect(row('111111111111')).toMatch(
      /REFUSED<br><small>1 worse, up to 900%<\/small><\/td><td class="fail">REFUSED<\/td><\/tr>$/,
    );
    const promoted = row(path.basename(sif).replace(/^.*-dockerhash-|\.sif$/g, ''));
    // The parameter that differs between the versions (v) has a column; the promoted one is marked linked.
    expect(html).toContain('<th>v</th>');
    expect(promoted).toContain('<td>1.0</td><td class="pass">linked</td>');
    expect(promoted).toMatch(/<td class="pass">PASSED<\/td><\/tr>$/);
  });
});

describe('issue 32: Ctrl-C in a terminal', () => {
  let dir: string;
  const session = `sifkit-${runId}`;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h32-tty-'));
    await writeRecipe(dir);
    expect((await runCli(['init', 'tree'], { cwd: dir })).code).toBe(0);
  });
  afterAll(async () => {
    try {
      execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    await fs.rm(dir, { recursive: true, force: true });
  });

  // -J: lines the terminal wrapped come back whole.
  const screen = () => execFileSync('tmux', ['capture-pane', '-p', '-J', '-t', session]).toString();

  it('names the interrupted stage, says interrupted (not FAILED), prints the command that resumes, and leaves no stale lines', async () => {
    // A real terminal (tmux, 120 columns): listr2 redraws in place, as a user sees it.
    // As a person's terminal: without CI's variable, which makes sifkit print plain lines.
    const cmd = `cd ${dir} && env -u CI node ${CLI} release ${path.join(dir, 'defs', 'tiny')} --root tree --out sif --no-gate; echo EXIT=$?; sleep 900`;
    execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '40', cmd]);
    // Interrupted once the conversion is writing its SIF (polled, not a guessed time). The image is read
    // once: the archive stage saves, scans and converts it together, so that is the stage interrupted.
    const out = path.join(dir, 'sif');
    await until(
      async () =>
        /EXIT=/.test(screen()) ||
        (await fs.readdir(out).catch(() => [] as string[])).some(
          (f) => f.endsWith('.sif') || f.includes(`.sif${TEMP_MARKER}`),
        ),
      100,
    );
    expect(screen()).not.toMatch(/EXIT=/);
    execFileSync('tmux', ['send-keys', '-t', session, 'C-c']);
    await until(async () => /EXIT=\d+/.test(screen()), 100);
    const text = screen();
    expect(text).toMatch(/EXIT=130/);
    expect(text).toMatch(/✖ Save the docker archive: interrupted/);
    expect(text).not.toMatch(/FAILED|operation was aborted/);
    expect(text).toMatch(/^ {2}[0-9a-f]{12} +done +(done|skip) +interrupted +- +- +- +- *$/m);
    expect(text).toMatch(/sifkit: error: interrupted during archive; nothing half-written is left/);
    expect(text).toContain(
      `to resume (each stage skips what is done): sifkit release ${path.join(dir, 'defs', 'tiny')} --root tree --out sif --no-gate`,
    );
    // The variant's header once: nothing left behind by the display.
    expect(text.match(/^ *[❯✖✔] sifkittest-tiny-v-1\.0/gm)).toHaveLength(1);

    // The command it printed resumes: the stages done are skipped, the rest done.
    const again = await runCli(
      ['release', path.join(dir, 'defs', 'tiny'), '--root', 'tree', '--out', 'sif', '--no-gate', '--json'],
      { cwd: dir },
    );
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).variants[0].stages).toMatchObject({
      build: expect.stringMatching(/^skipped/),
      convert: 'done',
      promote: 'done',
    });
  });
});

describe('issue 32: the set-up leaves sifkit on PATH', () => {
  it('writes a launcher of this checkout into the bin directory, which then runs as `sifkit`', async () => {
    const bin = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h32-bin-'));
    try {
      const repo = path.join(__dirname, '..', '..');
      // A PATH of only the programs the set-up and the launcher use, so a sifkit installed
      // on this machine (CI's own set-up puts one in npm's global bin) is not found first.
      const tools = path.join(bin, '..', `${path.basename(bin)}-tools`);
      await fs.mkdir(tools, { recursive: true });
      for (const t of [
        'bash',
        'sh',
        'dirname',
        'id',
        'mkdir',
        'chmod',
        'mv',
        'grep',
        'cat',
        'sed',
        'awk',
        'readlink',
        'rm',
      ]) {
        const where = spawnSync('bash', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim();
        if (where) await fs.symlink(where, path.join(tools, t));
      }
      await fs.symlink(process.execPath, path.join(tools, 'node'));
      const env = { ...process.env, SIFKIT_BIN_DIR: bin, PATH: `${bin}:${tools}` };
      const said = spawnSync('bash', ['scripts/setup.sh', 'path'], { cwd: repo, env, encoding: 'utf8' });
      expect(said.status).toBe(0);
      expect(said.stderr).toBe(`sifkit setup: put sifkit on PATH: ${bin}/sifkit runs this checkout's build\n`);
      const version = execFileSync('sifkit', ['--version'], { env, encoding: 'utf8' });
      expect(version.trim()).toBe(JSON.parse(await fs.readFile(path.join(repo, 'package.json'), 'utf8')).version);
      // A second run changes nothing.
      const before = await fs.readFile(path.join(bin, 'sifkit'), 'utf8');
      execFileSync('bash', ['scripts/setup.sh', 'path'], { cwd: repo, env, stdio: 'ignore' });
      expect(await fs.readFile(path.join(bin, 'sifkit'), 'utf8')).toBe(before);
    } finally {
      await fs.rm(bin, { recursive: true, force: true });
      await fs.rm(`${bin}-tools`, { recursive: true, force: true });
    }
  });
});

describe('issue 32: help promises only what the command does', () => {
  it('help easyconfig says USER.md comes only with a recipe that has one (the example has none)', async () => {
    const r = await runCli(['help', 'easyconfig']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('when the recipe has a USER.md');
    expect(existsSync(path.join(__dirname, '..', '..', 'docker-defs', 'mpi4py-cpu', 'USER.md'))).toBe(false);
  });
});
