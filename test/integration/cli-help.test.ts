/**
 * The newcomer's view: help with examples for every command, shell
 * completion that works in a real bash and through a real TAB in zsh, and tables
 * that are labelled, fit 100 columns and are coloured only on a terminal.
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CLI, runCli, runCliEach, type CliResult } from '../support/cli';
import { genTree, series } from '../support/gentree';
import { buildProgram } from '../../src/cli/program';
import { EXAMPLES } from '../../src/cli/help';

// Each completion is a real bash asking a real sifkit process, several per test.
jest.setTimeout(300_000);

const commands = buildProgram().commands.map((c) => c.name());

describe('sifkit help COMMAND', () => {
  it('has examples for every command, and only for commands that exist', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual([...commands].sort());
  });
  // Each `help CMD` is a process of its own, as a user runs it; they are started a core's worth at a time.
  const helps = new Map<string, CliResult>();
  beforeAll(async () => {
    const results = await runCliEach(commands.map((cmd) => ['help', cmd]));
    commands.forEach((cmd, i) => helps.set(cmd, results[i]));
  });
  it.each(commands)('help %s prints usage and examples', (cmd) => {
    const r = helps.get(cmd)!;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: sifkit ${cmd} `));
    expect(r.stdout).toContain('\nExamples:\n');
    expect(r.stdout).toMatch(/\n {2}\$ .*sifkit /);
  });
  it('help alone lists the commands on stdout', async () => {
    const r = await runCli(['help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: sifkit /);
    expect(r.stdout).toContain('Run sifkit help COMMAND for its options and examples.');
  });
  it('names an unknown command in one line, with exit 2', async () => {
    const r = await runCli(['help', 'promte']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^sifkit: error: no command "promte"\nsifkit: hint: commands: render, build, .*promote.*\n$/,
    );
  });
});

describe('help, version and a TAB answer that cannot be written', () => {
  // commander ended the process at once after help or the version, before the write's error arrived: exit 0.
  const full = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const fd = openSync('/dev/full', 'w');
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', fd, 'pipe'] });
      closeSync(fd);
      let stderr = '';
      child.stderr?.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
  it.each(['--help', '--version', '-V', 'help', 'help status', 'status --help', 'host snapshot -h'])(
    'sifkit %s > /dev/full: exit 1 and one line',
    async (args) => {
      expect(await full(args.split(' '))).toEqual({
        code: 1,
        stderr: 'sifkit: error: cannot write to stdout: no space left on device (ENOSPC)\n',
      });
    },
  );
  it('a TAB answer > /dev/full: exit 1, and still nothing on the terminal', async () => {
    expect(await full(['__complete', ''])).toEqual({ code: 1, stderr: '' });
  });
  it("help to a reader that went away (| head -1) is the reader's choice: exit 0", () => {
    const out = execFileSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" --help | head -1`]);
    expect(out.toString()).toBe('Usage: sifkit [options] [command]\n');
  });
});

describe('a stdout the caller closed (>&-), through the sifkit command', () => {
  // Node reopens a closed fd 1 on /dev/null before any JavaScript runs: the launcher tells it apart.
  const BIN = path.join(__dirname, '..', '..', 'bin', 'sifkit');
  const sh = (line: string) => spawnSync('bash', ['-c', line], { encoding: 'utf8' });
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-closed-'));
    execFileSync(BIN, ['init', path.join(dir, 't')]);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));
  const LOST =
    'sifkit: error: cannot write to stdout: it was closed when sifkit started (>&-); to discard the output, send it to /dev/null';

  it.each(['--help', '--version', 'status --root T'])('sifkit %s >&-: exit 1 and one line', (args) => {
    const r = sh(`"${BIN}" ${args.replace('T', path.join(dir, 't'))} >&-`);
    expect({ code: r.status, lost: r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error')) }).toEqual({
      code: 1,
      lost: [LOST],
    });
  });
  it('an error of its own keeps its exit code; /dev/null and a caller that discards stdout are exit 0', () => {
    expect(sh(`"${BIN}" status --root ${dir}/none >&-`).status).toBe(2);
    expect(sh(`"${BIN}" status --root ${dir}/t >/dev/null`).status).toBe(0);
    // Python's subprocess.DEVNULL opens /dev/null read-write, as node's reopen does: not a closed stdout.
    const py = `import subprocess, sys; sys.exit(subprocess.run([sys.argv[1], 'status', '--root', sys.argv[2]], stdout=subprocess.DEVNULL).returncode)`;
    expect(spawnSync('python3', ['-c', py, BIN, `${dir}/t`]).status).toBe(0);
  });
});

describe('sifkit completion', () => {
  let dir: string;
  let bin: string;
  let tree: string;
  const stem = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-completion-'));
    // The sifkit the user types: this checkout's build, first on PATH (the script asks COMP_WORDS[0]).
    bin = path.join(dir, 'bin');
    await fs.mkdir(bin);
    await fs.writeFile(path.join(bin, 'sifkit'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, {
      mode: 0o755,
    });
    await fs.writeFile(path.join(dir, 'sifkit.bash'), (await runCli(['completion', 'bash'])).stdout);
    await fs.writeFile(path.join(dir, '_sifkit'), (await runCli(['completion', 'zsh'])).stdout);
    await fs.writeFile(path.join(dir, 'image.sif'), '');
    tree = path.join(dir, 'tree');
    await genTree(tree, series(stem, '6.2.0', 2, 40, 'a'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  /** Sources the script in a real bash and asks the completion function, as bash does on TAB. */
  function complete(words: string[], env: NodeJS.ProcessEnv = {}): string[] {
    const script = `source ./sifkit.bash
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_sifkit
printf '%s\\n' "\${COMPREPLY[@]}"`;
    return execFileSync('bash', ['--norc', '--noprofile', '-c', script], {
      cwd: dir,
      env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}` },
    })
      .toString()
      .split('\n')
      .filter(Boolean)
      .sort();
  }

  it('bash: completes command names', () => {
    expect(complete(['sifkit', 'st'])).toEqual(['stage', 'status']);
    expect(complete(['sifkit', 're'])).toEqual(['release', 'render', 'report', 'restore', 'retire']);
  });
  it("bash: completes a command's flags", () => {
    expect(complete(['sifkit', 'status', '--'])).toEqual(['--help', '--json', '--root', '--stem', '--where']);
    expect(complete(['sifkit', 'convert', '--comp'])).toEqual(['--compression']);
  });
  it('bash: completes the values of fixed-value flags, files elsewhere', () => {
    expect(complete(['sifkit', 'promote', 'x.sif', '--to', ''])).toEqual(['all', 'easybuild-sif-images', 'sif-images']);
    expect(complete(['sifkit', 'test', 'x', '--runner', 's'])).toEqual(['slurm']);
    expect(complete(['sifkit', 'inspect', 'ima'])).toEqual(['image.sif']);
    expect(complete(['sifkit', 'stage', '--root', 'ima'])).toEqual(['image.sif']);
    expect(complete(['sifkit', 'completion', ''])).toEqual(['bash', 'zsh']);
  });
  it('bash: help completes commands only, never a directory listing', () => {
    expect(complete(['sifkit', 'help', 'pro'])).toEqual(['promote']);
    expect(complete(['sifkit', 'help', ''])).toEqual([...commands].sort());
  });
  it('bash: completes recipe names, from sifkit, and paths', () => {
    expect(complete(['sifkit', 'render', 'mpi'])).toEqual(['mpi4py', 'mpi4py-cpu']);
    expect(complete(['sifkit', 'run', 'release', '--recipe', 'mpi4py-c'])).toEqual(['mpi4py-cpu']);
    expect(complete(['sifkit', 'build', 'ima'])).toEqual(['image.sif']);
  });
  it("bash: completes a recipe's parameters and their values after --set", () => {
    expect(complete(['sifkit', 'render', 'mpi4py-cpu', '--set', 'con'])).toEqual(['conda_env=']);
    expect(complete(['sifkit', 'render', 'mpi4py-cpu', '--set', 'conda_env='])).toEqual([
      'conda_env=mpi4py',
      'conda_env=mpi4py-b',
    ]);
    expect(complete(['sifkit', 'build', 'mpi4py', '--set', 'rocm=6.2'])).toEqual(
      expect.arrayContaining(['rocm=6.2.0']),
    );
    expect(complete(['sifkit', 'run', 'build', '--recipe', 'mpi4py-cpu', '--set', 'pyth'])).toEqual(['python=']);
    // No recipe given yet, or one that does not exist: nothing, and no error on the terminal.
    expect(complete(['sifkit', 'render', '--set', ''])).toEqual([]);
    expect(complete(['sifkit', 'render', 'nosuch', '--set', ''])).toEqual([]);
  });
  it('bash: completes the images in the tree (--root, else $LUMI_CONTAINER_REPOSITORY_ROOT)', () => {
    const images = complete(['sifkit', 'promote', '--root', tree, 'lumi-']);
    expect(images).toHaveLength(2);
    for (const i of images) expect(i).toMatch(new RegExp(`^${stem}-dockerhash-[0-9a-f]{12}\\.sif$`));
    expect(complete(['sifkit', 'module', 'lumi-'], { LUMI_CONTAINER_REPOSITORY_ROOT: tree })).toEqual(images);
    expect(complete(['sifkit', 'promote', '--root', path.join(dir, 'nosuch'), 'lumi-'])).toEqual([]);
  });
  it('zsh: the script parses and registers _sifkit for sifkit', () => {
    execFileSync('zsh', ['-n', path.join(dir, '_sifkit')]);
    const out = execFileSync('zsh', [
      '-f',
      '-c',
      `autoload -U compinit; compinit -u -D; source ${path.join(dir, '_sifkit')}; print -r -- "$_comps[sifkit]"`,
    ]).toString();
    expect(out.trim()).toBe('_sifkit');
  });
  it('zsh: a real TAB in an interactive zsh completes commands, flags, recipes and images', async () => {
    // zpty gives the shell a pseudo-terminal; each line is typed, TAB pressed, then ^X dumps the edited line.
    const driver = path.join(dir, 'drive.zsh');
    const lines = path.join(dir, 'zsh-lines');
    await fs.writeFile(
      driver,
      `zmodload zsh/zpty
zpty z "zsh -f -i"
zpty -w z "PS1='> '; fpath=(\${(q)1} \\$fpath); autoload -U compinit; compinit -u -D"
zpty -w z "dump() { print -r -- \\"<\\$BUFFER>\\" >> \${(q)2}; BUFFER=; }; zle -N dump; bindkey '^X' dump"
n=0
for line in "\${@:3}"; do
  zpty -w -n z "$line"$'\\t\\x18'
  (( n++ ))
  # Polled, no guessed time: until this line is dumped, reading what the shell prints meanwhile.
  while [[ ! -f $2 || $(wc -l < $2) -lt $n ]]; do
    while zpty -r -t z chunk; do :; done
    sleep 0.05
  done
done
zpty -d z
`,
    );
    const image = complete(['sifkit', 'promote', '--root', tree, 'lumi-'])[0];
    const typed = [
      'sifkit stat',
      'sifkit st',
      'sifkit status --wh',
      'sifkit convert x.sif --compression zs',
      'sifkit render mpi4py-c',
      `sifkit promote --root ${tree} ${image.slice(0, -'.sif'.length)}`,
    ];
    execFileSync('zsh', ['-f', driver, dir, lines, ...typed], {
      cwd: dir,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, TERM: 'dumb' },
    });
    expect((await fs.readFile(lines, 'utf8')).trimEnd().split('\n')).toEqual([
      '<sifkit status >',
      // Two commands begin with st: the common part, as zsh does.
      '<sifkit sta>',
      '<sifkit status --where >',
      '<sifkit convert x.sif --compression zstd >',
      '<sifkit render mpi4py-cpu >',
      `<sifkit promote --root ${tree} ${image} >`,
    ]);
  });
  it('answers a TAB from its cache without loading the library, and rebuilds a damaged cache', async () => {
    const cache = path.join(dir, 'cache');
    const env = { XDG_CACHE_HOME: cache };
    // The first TAB builds the cache from the whole program.
    expect((await runCli(['__complete', 'st'], { env })).stdout).toBe('stage\nstatus\n');
    const [file] = await fs.readdir(path.join(cache, 'sifkit'));
    expect(file).toMatch(/^commands-[0-9a-f]{32}\.json$/);
    // The next loads neither index.ts nor the commands' modules.
    const probe = `const m = require(${JSON.stringify(path.join(path.dirname(CLI), 'complete-main.js'))});
m.answerCompletion(['status', '--wh']).then(() => {
  const loaded = Object.keys(require.cache).map((f) => path.relative(${JSON.stringify(path.dirname(path.dirname(CLI)))}, f));
  console.error(JSON.stringify(loaded.filter((f) => !f.startsWith('..'))));
});`;
    const r = await promisify(execFile)(process.execPath, ['-e', `const path = require('node:path');\n${probe}`], {
      env: { ...process.env, ...env },
    });
    expect(r.stdout).toBe('--where\n');
    expect(JSON.parse(r.stderr).sort()).toEqual(['cli/complete-main.js', 'cli/complete-sources.js', 'cli/complete.js']);
    // A damaged or hostile cache is data that fails its check: rebuilt, never echoed.
    await fs.writeFile(
      path.join(cache, 'sifkit', file),
      JSON.stringify([{ name: 'x; rm -rf /', flags: [], args: [] }]),
    );
    expect((await runCli(['__complete', 'st'], { env })).stdout).toBe('stage\nstatus\n');
    expect(await fs.readFile(path.join(cache, 'sifkit', file), 'utf8')).toContain('"name":"status"');
  });
  it('refuses another shell with exit 2 and one line', async () => {
    const r = await runCli(['completion', 'fish']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('sifkit: error: no completion for "fish": bash or zsh\n');
  });
});

describe('sifkit status: a readable table', () => {
  let dir: string;
  let root: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-status-view-'));
    root = path.join(dir, 'tree');
    const stem = (r: string) => `lumi-mpi4py-rocm-${r}-python-3.12-mpi4py-3.1.6`;
    await genTree(root, [...series(stem('6.2.0'), '6.2.0', 3, 40, 'a'), ...series(stem('6.2.4'), '6.2.4', 2, 20, 'b')]);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('labels every column, names parameters as the recipe does, fits 100 columns, no colour in a pipe', async () => {
    const r = await runCli(['status', '--root', root]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('stem');
    expect(lines[1].trim().split(/\s+/)).toEqual([
      'dockerhash',
      'rocm',
      'in',
      'linked',
      'size',
      'age',
      'checksum',
      'test',
    ]);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
    expect(r.stdout).not.toContain('\u001b[');
    expect(r.stdout).toMatch(/ KiB +\d+ d +ok-cached +-\n/);
  });
  it('filters by --where and --stem', async () => {
    const where = JSON.parse((await runCli(['status', '--root', root, '--where', 'rocm=6.2.4', '--json'])).stdout);
    expect(where.images.map((i: { params: { rocm: string } }) => i.params.rocm)).toEqual(['6.2.4', '6.2.4']);
    const stem = JSON.parse(
      (await runCli(['status', '--root', root, '--stem', 'lumi-mpi4py-rocm-6.2.0-*', '--json'])).stdout,
    );
    expect(stem.images).toHaveLength(3);
    const none = await runCli(['status', '--root', root, '--where', 'rocm=5.0']);
    expect(none.stdout).toBe('no images match\n');
  });
  it('refuses a --where naming no parameter of the tree, with exit 2', async () => {
    const r = await runCli(['status', '--root', root, '--where', 'rocn=6.2.0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('sifkit: error: no image in the tree has a parameter rocn (they have: rocm)\n');
  });
  it('colours on a terminal, not with NO_COLOR', () => {
    // script(1) gives the command a pseudo-terminal, as a user's shell would.
    const onTty = (env: string) =>
      execFileSync('script', ['-qec', `${env} ${process.execPath} ${CLI} status --root ${root}`, '/dev/null'], {
        env: { ...process.env, TERM: 'xterm' },
      }).toString();
    expect(onTty('')).toContain('\u001b[1mstem\u001b[0m');
    expect(onTty('NO_COLOR=1')).not.toContain('\u001b[');
  });
});

describe('an empty tree, as a newcomer first meets it', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-empty-tree-'));
    expect((await runCli(['init', path.join(dir, 't')])).code).toBe(0);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('status and retire say in a line that there is nothing, not an empty table', async () => {
    const root = path.join(dir, 't');
    expect(await runCli(['status', '--root', root])).toMatchObject({ code: 0, stdout: `no images in ${root}\n` });
    expect(await runCli(['retire', '--root', root])).toMatchObject({
      code: 0,
      stdout: `no images in ${root}: nothing to retire\n`,
    });
    const report = await runCli(['report', '--root', root, '--out', path.join(dir, 'report')]);
    expect(report.code).toBe(2);
    expect(report.stderr).toBe(
      `sifkit: error: no test results in ${root}/.sifkit/test-results nor in the tree's ledger (${root})\nsifkit: hint: test an image first (sifkit help test shows how); its runs go to ${root}/.sifkit/test-results and, with --root ${root}, to the tree's ledger\n`,
    );
  });
  it('a hint that names a command gives it with the real arguments: pasted into a shell, it runs', async () => {
    const root = path.join(dir, 't');
    const name = 'lumi-x-1-dockerhash-0123456789ab.sif';
    const hints: string[] = [];
    for (const args of [
      ['restore', name, '--root', root],
      ['promote', name, '--to', 'sif-images', '--root', root],
    ]) {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      const hint = /^sifkit: hint: (.*)$/m.exec(r.stderr)![1];
      hints.push(hint);
      const command = /^(sifkit status .*?) lists/.exec(hint)![1];
      // The command as the user would paste it: through a shell, sifkit being the built CLI.
      const pasted = execFileSync('bash', ['-c', `sifkit() { "${process.execPath}" "${CLI}" "$@"; }; ${command}`]);
      expect(pasted.toString()).toBe(`no images in ${root}\n`);
    }
    expect(hints).toEqual([
      `sifkit status --root ${root} lists the images in the tree; retired ones are under .sifkit/quarantine/`,
      `sifkit status --root ${root} lists what is there`,
    ]);
  });
});
