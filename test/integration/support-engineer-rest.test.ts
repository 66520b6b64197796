/**
 * Issue 32's rest, through the real CLI (CI=true, no terminal): what a
 * support engineer meets after a retire, with module versions, with
 * completion and with plain progress lines.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { genTree, type GenImage } from '../support/gentree';

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
