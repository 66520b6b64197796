import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';

// The matrix is 42 variants, each rendered and linted in a fresh CLI process.
jest.setTimeout(60_000);

describe('sifkit render, as a user runs it', () => {
  it('lists the commands in --help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/render/);
    expect(r.stdout).toMatch(/build/);
  });
  it('prints the Dockerfile alone on stdout, names on stderr', async () => {
    const r = await runCli([
      'render',
      'mpi4py',
      '--set',
      'rocm=6.2.0',
      '--set',
      'python=3.12',
      '--set',
      'mpi4py=3.1.6',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('# ---- fragments/sles-base.docker ----\n')).toBe(true);
    expect(r.stdout).not.toContain('Render the definition');
    expect(r.stderr).toContain('lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6');
    expect(r.stderr).toContain('lumi/lumi-mpi4py:rocm-6.2.0-python-3.12-mpi4py-3.1.6');
  });
  it('prints exactly one JSON document with --json', async () => {
    const r = await runCli(['render', 'mpi4py', '--json', '--date', '20241007']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.names.easyconfig).toBe('mpi4py-3.1.6-rocm-6.2.0-python-3.12-singularity-20241007.eb');
    expect(doc.definitionHash).toMatch(/^[0-9a-f]{64}$/);
    expect(doc.dockerfile).toContain('FROM registry.suse.com/bci/bci-base:15.5');
  });
  it('renders the whole matrix into one directory per variant', async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-render-'));
    const r = await runCli(['render', 'mpi4py', '--matrix', '--out', out]);
    expect(r.code).toBe(0);
    const dirs = (await fs.readdir(out)).sort();
    expect(dirs).toEqual(
      expect.arrayContaining([
        'lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4',
        'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6',
      ]),
    );
    const meta = JSON.parse(await fs.readFile(path.join(out, dirs[0], 'build.json'), 'utf8'));
    expect(meta.buildArgs).toEqual(['SERVER_PORT', 'SERVED_DIGEST']);
    expect(await fs.readFile(path.join(out, dirs[0], 'Dockerfile'), 'utf8')).toContain(`io.sifkit.stem="${dirs[0]}"`);
  });
  it("refuses another variant's files in --out with exit 3 unless --force; a re-render replaces its own", async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-render-out-'));
    const dockerfile = path.join(out, 'Dockerfile');
    expect((await runCli(['render', 'mpi4py', '--out', out])).code).toBe(0);
    const first = await fs.readFile(dockerfile, 'utf8');
    // The same variant on another day: its own files, replaced without a word.
    const again = await runCli(['render', 'mpi4py', '--out', out, '--date', '20200101']);
    expect(again.code).toBe(0);
    expect(JSON.parse(await fs.readFile(path.join(out, 'build.json'), 'utf8')).names.easyconfig).toMatch(
      /-20200101\.eb$/,
    );
    // Another variant: refused in one line, nothing written.
    const other = await runCli(['render', 'mpi4py', '--set', 'python=3.11', '--out', out]);
    expect(other.code).toBe(3);
    expect(other.stderr).toContain(
      `sifkit: error: ${dockerfile} is already there with other content (rendered for lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6)\n`,
    );
    expect(await fs.readFile(dockerfile, 'utf8')).toBe(first);
    // A file sifkit did not write is refused too.
    await fs.writeFile(path.join(out, 'build.json'), 'hand-made\n');
    expect((await runCli(['render', 'mpi4py', '--out', out])).code).toBe(3);
    const forced = await runCli(['render', 'mpi4py', '--set', 'python=3.11', '--out', out, '--force']);
    expect(forced.code).toBe(0);
    expect(await fs.readFile(dockerfile, 'utf8')).toContain(
      'io.sifkit.stem="lumi-mpi4py-rocm-6.2.0-python-3.11-mpi4py-3.1.6"',
    );
    await fs.rm(out, { recursive: true, force: true });
  });
  it('refuses a matrix whose rows get one name before writing into --out (exit 2)', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-stems-'));
    await fs.mkdir(path.join(root, 'twin'));
    await fs.writeFile(
      path.join(root, 'twin', 'recipe.yaml'),
      "name: twin\nnaming: { app: twin, version: v, parts: [[v, v]] }\nfragments: [twin/main.docker]\nparameters:\n  v: { type: version, default: '1.0' }\n  flavour: { type: enum, values: [a, b], default: a }\nmatrix:\n  - { flavour: a }\n  - { flavour: b }\n",
    );
    await fs.writeFile(path.join(root, 'twin', 'main.docker'), 'FROM scratch\nENV FLAVOUR={{ flavour }}\n');
    const out = path.join(root, 'out');
    const r = await runCli(['render', path.join(root, 'twin'), '--matrix', '--out', out]);
    expect(r.stderr).toContain(
      'sifkit: error: matrix rows 1 and 2 of twin get one name (v-1.0): they differ only in flavour, which no naming part names\n',
    );
    expect(r.code).toBe(2);
    await expect(fs.access(out)).rejects.toThrow();
    await fs.rm(root, { recursive: true, force: true });
  });
  it.each([
    [['render', 'mpi4py', '--set', 'rocm=6.2.0;id'], /^sifkit: error: parameter rocm: .*not allowed/m],
    [['render', 'mpi4py', '--set', 'rocmm=6.2.0'], /^sifkit: error: unknown parameter rocmm for recipe mpi4py/m],
    [
      ['render', 'mpi4py', '--set', 'gpu_targets=gfx1100'],
      /^sifkit: error: parameter gpu_targets: "gfx1100" is not one of/m,
    ],
    [['render', 'nosuch'], /^sifkit: error: no recipe nosuch/m],
    [['render', 'mpi4py', '--date', '2024-10-07'], /^sifkit: error: --date 2024-10-07 is not YYYYMMDD/m],
    [['render'], /^sifkit: error: missing required argument 'recipe'$/m],
    // Usage errors of any command read as sifkit's own, not commander's bare `error:`.
    [['promote', 'x', '--root', os.tmpdir()], /^sifkit: error: required option '--to <where>' not specified$/m],
    [['status', '--bogus'], /^sifkit: error: unknown option '--bogus'$/m],
  ])('refuses %j with exit 2 and a one-line error', async (args, re) => {
    const r = await runCli(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(re);
    expect(r.stdout).toBe('');
  });
  it('with --json, a bad value is still one JSON document', async () => {
    const r = await runCli(['render', 'mpi4py', '--json', '--set', 'python=3']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'bad-parameter' } });
  });
  it('fails the render on a lint error in a fragment', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-lint-'));
    await fs.mkdir(path.join(root, 'bad'));
    await fs.writeFile(
      path.join(root, 'bad', 'recipe.yaml'),
      "name: bad\nnaming: { app: bad, version: v, parts: [[v, v]] }\nfragments: [bad/main.docker]\nparameters: { v: { type: version, default: '1.0' } }\n",
    );
    await fs.writeFile(path.join(root, 'bad', 'main.docker'), 'FROM scratch\nENV ONLYKEY\n');
    const r = await runCli(['render', path.join(root, 'bad')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Dockerfile line 3: ENV must have two arguments/);
  });
});
