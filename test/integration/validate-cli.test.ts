/**
 * Hostile names and damaged files through the real CLI: exit 2, one line
 * on stderr naming the label or file, and not a byte written outside the
 * root or the output directory (the whole scratch directory is compared
 * before and after).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli, type CliResult } from '../support/cli';
import { layerTar, legacyArchive } from '../support/archives';
import { makeSif } from '../support/sifs';

const STEM = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
const HASH = '0123456789ab';
const IMAGE_ID = `sha256:${HASH}${'0'.repeat(52)}`;

// Each case runs the CLI two or three times on a shared 2-core machine.
jest.setTimeout(120_000);

let work: string;
let root: string;

/** Every path under `dir` with its size: what a command may not change. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.push(`${path.relative(dir, p)}/`);
        await walk(p);
      } else out.push(`${path.relative(dir, p)} ${(await fs.lstat(p)).size}`);
    }
  };
  await walk(dir);
  return out.sort();
}

function expectOneLineInputError(r: CliResult, pattern: RegExp): void {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(pattern) });
  // Progress lines may come before it; the error itself is one line.
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error:'));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-hostile-'));
  root = path.join(work, 'root');
  await fs.mkdir(root);
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('a SIF label never names a place outside the tree', () => {
  it.each([
    ['stem', { stem: '../../escaped' }, /label io.sifkit.stem of .*: stem "..\/..\/escaped" is not allowed/],
    ['stem with a slash', { stem: 'a/b' }, /label io.sifkit.stem of .*: stem "a\/b" is not allowed/],
    ['stem with a newline', { stem: 'a\nb' }, /label io.sifkit.stem of .*: stem "a\\nb" is not allowed/],
    [
      'dockerhash',
      { stem: STEM, dockerhash: '../../../x', labels: { 'io.sifkit.image-id': IMAGE_ID } },
      /label io.sifkit.dockerhash of .*: dockerhash "..\/..\/..\/x" is not allowed/,
    ],
  ])('stage refuses a hostile %s with exit 2', async (_what, spec, message) => {
    const sif = path.join(work, 'hostile.sif');
    await makeSif(sif, spec);
    const before = await listing(work);
    const r = await runCli(['stage', sif, '--untested', '--root', root]);
    expectOneLineInputError(r, message);
    expect(await listing(work)).toEqual(before);
    await fs.rm(sif);
  });

  it('easyconfig never reads a recipe from a path in a label', async () => {
    const sif = path.join(work, 'recipe-path.sif');
    await makeSif(sif, {
      stem: STEM,
      dockerhash: HASH,
      recipe: '/etc',
      params: { rocm: '6.2.0', python: '3.12', mpi4py: '3.1.6' },
    });
    const out = path.join(work, 'ec');
    const r = await runCli(['easyconfig', sif, '--out', out, '--root', root]);
    expectOneLineInputError(r, /label io.sifkit.recipe of .*: recipe "\/etc" is not allowed/);
    await expect(fs.stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    await fs.rm(sif);
  });

  it('convert --out-dir refuses an archive whose stem label climbs out', async () => {
    const archive = path.join(work, 'hostile.tar');
    await legacyArchive(archive, [await layerTar([{ name: 'bin/', type: 'directory' }])], {
      config: { Env: ['PATH=/bin'], Labels: { 'io.sifkit.stem': '../../outside' } },
    });
    const out = path.join(work, 'out');
    await fs.mkdir(out);
    const before = await listing(work);
    const r = await runCli(['convert', `docker-archive:${archive}`, '--out-dir', out]);
    expectOneLineInputError(r, /label io.sifkit.stem of .*hostile.tar: stem "..\/..\/outside" is not allowed/);
    expect(await listing(work)).toEqual(before);
  });
});

describe('damaged files are one-line input errors', () => {
  it('release --to with an unknown target: refused before the tree is made or anything is built', async () => {
    const before = await listing(work);
    const r = await runCli([
      'release',
      'mpi4py-cpu',
      '--to',
      'nowhere',
      '--root',
      path.join(work, 'new-tree'),
      '--init',
    ]);
    expectOneLineInputError(r, /--to "nowhere" is not sif-images, easybuild-sif-images or all/);
    expect(await listing(work)).toEqual(before);
  });

  it('render --out onto a file', async () => {
    const file = path.join(work, 'a-file');
    await fs.writeFile(file, 'x');
    const r = await runCli(['render', 'mpi4py-cpu', '--out', file]);
    expectOneLineInputError(r, /--out .*a-file: a file is there, not a directory/);
    expect(await fs.readFile(file, 'utf8')).toBe('x');
  });

  it.each([
    ['empty', ''],
    ['garbage', '\u0000\u0001 not json'],
    ['mistyped', JSON.stringify({ name: `${STEM}-dockerhash-${HASH}.sif`, sha256: 42 })],
  ])('a ledger record that is %s: promote refuses, status carries on', async (_what, text) => {
    const tree = path.join(work, `tree-${_what}`);
    const name = `${STEM}-dockerhash-${HASH}.sif`;
    await fs.mkdir(path.join(tree, '.sifkit', 'ledger'), { recursive: true });
    for (const d of ['tested-containers', 'sif-images', 'easybuild-sif-images'])
      await fs.mkdir(path.join(tree, d), { recursive: true });
    await makeSif(path.join(tree, 'tested-containers', name), { stem: STEM, dockerhash: HASH });
    await fs.writeFile(path.join(tree, '.sifkit', 'ledger', `${name}.json`), text);
    const before = await listing(tree);
    const promoted = await runCli(['promote', name, '--to', 'all', '--root', tree]);
    expectOneLineInputError(promoted, /ledger record .*\.json: /);
    const status = await runCli(['status', '--root', tree]);
    expect(status.code).toBe(0);
    expect(status.stderr).not.toMatch(/internal error/);
    const verify = await runCli(['verify', '--root', tree, '--json']);
    expect(JSON.parse(verify.stdout).problems).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'ledger-damaged' })]),
    );
    // Nothing changed but the lock's own coming and going.
    expect(
      (await listing(tree)).filter((l) => !l.startsWith('.sifkit/lock') && !l.startsWith('.sifkit/audit.log')),
    ).toEqual(before);
  });
});
