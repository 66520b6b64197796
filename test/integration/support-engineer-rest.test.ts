/**
 * Issue 32's rest, through the real CLI (CI=true, no terminal): what a
 * support engineer meets after a retire, with module versions, with
 * completion and with plain progress lines.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { BUSYBOX, removeTestImages, writeTestRecipe } from '../support/engine';
import { genTree, type GenImage } from '../support/gentree';
import { makeSif } from '../support/sifs';

jest.setTimeout(120_000);

const STEM = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h38-support-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

const old: GenImage = {
  stem: STEM,
  rocm: '6.2.0',
  dockerhash: 'a1b2c3d4e5f6',
  daysOld: 400,
  dirs: ['tested-containers', 'easybuild-sif-images'],
};
const young: GenImage = { ...old, dockerhash: 'f6e5d4c3b2a1', daysOld: 1 };

async function policy(): Promise<string> {
  const f = path.join(dir, 'policy.yaml');
  await fs.writeFile(
    f,
    `directories:
  tested-containers: { keep_newest: 1, series: [stem], keep_younger_than_days: 5 }
  easybuild-sif-images: { keep_newest: 1, series: [stem], keep_younger_than_days: 5 }
quarantine_days: 30
`,
  );
  return f;
}

async function statusOf(root: string, dockerhash: string): Promise<{ checksum: string; dirs: string[] }> {
  const r = await runCli(['status', '--root', root, '--json']);
  expect(r.code).toBe(0);
  const images = JSON.parse(r.stdout).images as Array<{ dockerhash: string; checksum: string; dirs: string[] }>;
  return images.find((i) => i.dockerhash === dockerhash)!;
}

describe('issue 32: retire then restore', () => {
  it('restore DOCKERHASH brings the image back, and status then agrees with verify (not "changed")', async () => {
    const root = path.join(dir, 'restore');
    await genTree(root, [old, young]);
    const retired = await runCli(['retire', '--root', root, '--policy', await policy(), '--apply']);
    expect(retired.code).toBe(0);
    expect(await statusOf(root, old.dockerhash)).toBeUndefined();
    // Each copy back by the hash status showed; hard-linked copies stay vouched for.
    const first = await runCli(['restore', old.dockerhash, '--root', root]);
    expect(first).toMatchObject({ code: 2, stdout: '' });
    expect(first.stderr).toMatch(
      /a1b2c3d4e5f6.* is quarantined from both tested-containers and easybuild-sif-images; give --dir/,
    );
    for (const d of ['tested-containers', 'easybuild-sif-images']) {
      const r = await runCli(['restore', old.dockerhash, '--dir', d, '--root', root]);
      expect({ code: r.code, out: r.stdout }).toEqual({
        code: 0,
        out: `restored ${d}/${STEM}-dockerhash-${old.dockerhash}.sif\n`,
      });
    }
    expect(await statusOf(root, old.dockerhash)).toMatchObject({
      checksum: 'ok-cached',
      dirs: expect.arrayContaining(['tested-containers', 'easybuild-sif-images']),
    });
    expect(await statusOf(root, young.dockerhash)).toMatchObject({ checksum: 'ok-cached' });
    const verify = await runCli(['verify', '--deep', '--root', root]);
    expect({ code: verify.code, out: verify.stdout }).toEqual({ code: 0, out: 'tree is clean\n' });
  });

  it('a file changed in the quarantine is not vouched for on restore: status says changed, verify --deep finds it', async () => {
    const root = path.join(dir, 'tampered');
    await genTree(root, [
      { ...old, dirs: ['tested-containers'] },
      { ...young, dirs: ['tested-containers'] },
    ]);
    expect((await runCli(['retire', '--root', root, '--policy', await policy(), '--apply'])).code).toBe(0);
    const q = path.join(root, '.sifkit/quarantine/tested-containers', `${STEM}-dockerhash-${old.dockerhash}.sif`);
    const fh = await fs.open(q, 'r+');
    await fh.write(Buffer.from('X'), 0, 1, 100);
    await fh.close();
    expect((await runCli(['restore', old.dockerhash, '--root', root])).code).toBe(0);
    expect(await statusOf(root, old.dockerhash)).toMatchObject({ checksum: 'changed' });
    const verify = await runCli(['verify', '--deep', '--root', root]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain('mismatch');
  });

  it('restore of a dockerhash nothing in the quarantine has: one line, exit 2', async () => {
    const root = path.join(dir, 'none');
    await genTree(root, [young]);
    const r = await runCli(['restore', '0123456789ab', '--root', root]);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr.trim().split('\n')[0]).toBe(
      'sifkit: error: no image with dockerhash 0123456789ab is in the quarantine',
    );
  });
});

describe('issue 32: two versions made on one day', () => {
  const DATE = '20241007';
  /** A SIF of the example recipe (default parameters) as sifkit labels it, with its own dockerhash. */
  async function exampleSif(file: string, dockerhash: string): Promise<void> {
    const r = await runCli(['render', 'mpi4py-cpu', '--json']);
    expect(r.code).toBe(0);
    const rendered = JSON.parse(r.stdout);
    await makeSif(file, {
      stem: rendered.names.stem,
      dockerhash,
      recipe: 'mpi4py-cpu',
      params: rendered.parameters,
      env: ['WITH_CONDA=. /opt/mpi4py-env/activate', 'PATH=/usr/bin'],
      labels: { 'io.sifkit.definition-hash': rendered.definitionHash },
    });
  }
  const noTree = () => path.join(dir, 'no-tree');
  beforeAll(async () => {
    await exampleSif(path.join(dir, 'first.sif'), '111111111111');
    await exampleSif(path.join(dir, 'second.sif'), '222222222222');
  });

  it('module --out refuses (exit 3, one line naming the other image) to overwrite the first; a rerun is fine; --force replaces', async () => {
    const first = path.join(dir, 'first.sif');
    const second = path.join(dir, 'second.sif');
    const out = path.join(dir, 'modules-out');
    // One --date each run: a flag of one value given twice is refused.
    const mod = (sif: string, date = DATE, ...more: string[]) =>
      runCli(['module', sif, '--out', out, '--root', noTree(), '--date', date, ...more]);
    expect((await mod(first)).code).toBe(0);
    const lua = (await fs.readdir(path.join(out, 'modules', 'mpi4py-cpu')))[0];
    const before = await fs.readFile(path.join(out, 'modules', 'mpi4py-cpu', lua), 'utf8');
    // The same image again: the same files, no refusal.
    expect((await mod(first)).code).toBe(0);
    const refused = await mod(second);
    expect({ code: refused.code, stdout: refused.stdout }).toEqual({ code: 3, stdout: '' });
    expect(refused.stderr.split('\n')[0]).toBe(
      `sifkit: error: ${path.join(out, 'modules', 'mpi4py-cpu', lua)} is already there with other content (made for image 111111111111)`,
    );
    expect(refused.stderr).toContain('give this one --date of another day, or --force');
    expect(await fs.readFile(path.join(out, 'modules', 'mpi4py-cpu', lua), 'utf8')).toBe(before);
    // Another date: a distinct version beside the first.
    expect((await mod(second, '20241008')).code).toBe(0);
    expect((await fs.readdir(path.join(out, 'modules', 'mpi4py-cpu'))).sort()).toHaveLength(2);
    const forced = await mod(second, DATE, '--force');
    expect(forced.code).toBe(0);
    expect(await fs.readFile(path.join(out, 'modules', 'mpi4py-cpu', lua), 'utf8')).toContain('222222222222');
  });

  it('easyconfig --out refuses the same way, and --force replaces', async () => {
    const out = path.join(dir, 'ec-out');
    const ec = (sif: string, ...more: string[]) =>
      runCli(['easyconfig', sif, '--out', out, '--root', noTree(), '--date', DATE, ...more]);
    expect((await ec(path.join(dir, 'first.sif'))).code).toBe(0);
    const refused = await ec(path.join(dir, 'second.sif'));
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/\.eb is already there with other content \(made for image 111111111111\)/);
    expect((await ec(path.join(dir, 'second.sif'), '--force')).code).toBe(0);
  });
});

describe('issue 32: Ctrl-C in plain output (CI=true, no terminal)', () => {
  afterAll(() => removeTestImages());

  it('the interrupted stage reads interrupted, never FAILED, and the command that resumes is printed', async () => {
    // A build step that lasts until it is interrupted; the run label keeps other tests' caches from answering it.
    const defs = await writeTestRecipe(path.join(dir, 'defs'), 'slow', {
      steps: ['RUN echo h38-slow && sleep 600'],
      rest: "checks:\n  - { name: version, command: 'true' }\ntesting:\n  local: { launcher: '' }\n",
    });
    let sent = false;
    const r = await runCli(['release', defs, '--root', 'tree', '--init', '--out', 'sif'], {
      cwd: dir,
      // Interrupted once the build runs the step (polled on what it prints, not a guessed time).
      onStderr: (text, kill) => {
        if (!sent && text.includes('h38-slow')) {
          sent = true;
          kill('SIGINT');
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/✖ Build the image \[interrupted\]/);
    expect(r.stderr).not.toMatch(/FAILED/);
    expect(r.stderr).toContain(
      `to resume (each stage skips what is done): sifkit release ${defs} --root tree --init --out sif`,
    );
  });
});

describe('issue 32: standalone convert is not silent', () => {
  it('in plain output it says what it converts every ten seconds (nothing at the start), then the result', async () => {
    const out = path.join(dir, 'convert-out', 'busybox.sif');
    await fs.mkdir(path.dirname(out), { recursive: true });
    const r = await runCli(['convert', `docker-daemon:${BUSYBOX}`, '-o', out]);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: `${out}\n` });
    const lines = r.stderr.trim().split('\n');
    // Progress lines, if the conversion took ten seconds or more, carry the figures.
    for (const l of lines.slice(0, -1))
      expect(l).toMatch(
        /^converting docker-daemon:sifkit-test\/busybox:latest: [\d.]+ (B|KiB|MiB|GiB) written, .*\/s, \d+ s$/,
      );
    expect(lines.at(-1)).toMatch(/^converted docker-daemon:sifkit-test\/busybox:latest with /);
  });
});
