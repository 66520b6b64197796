/**
 * Generated container trees: many images from one small SIF, with ledger
 * records saying which stem, versions and age each has.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openTree, type Tree } from '../../src/tree/root';
import { statKey, writeLedger } from '../../src/tree/ledger';
import { makeSif } from './sifs';

export interface GenImage {
  stem: string;
  dockerhash: string;
  rocm: string;
  daysOld: number;
  dirs: Array<'tested-containers' | 'easybuild-sif-images'>;
}

export function series(stem: string, rocm: string, count: number, startDays: number, hashPrefix: string): GenImage[] {
  return Array.from({ length: count }, (_, i) => ({
    stem,
    rocm,
    dockerhash: `${hashPrefix}${i.toString(16).padStart(12 - hashPrefix.length, '0')}`,
    daysOld: startDays - i * 10, // the last is the newest
    dirs: ['tested-containers', 'easybuild-sif-images'],
  }));
}

let template: string | undefined;
let templateSha = '';

export async function genTree(root: string, images: GenImage[], now = Date.now()): Promise<Tree> {
  await fs.mkdir(root, { recursive: true });
  const tree = await openTree(root, true);
  // Made once per process, beside no test's own directory: a test that removes its directory must not take
  // the template of the next test's tree with it (jest runs files one after another in one process).
  if (!template || !(await fs.stat(template).catch(() => undefined))) {
    template = path.join(os.tmpdir(), `sifkit-gentree-template-${process.pid}.sif`);
    await makeSif(template, { stem: 'x', dockerhash: '000000000000' });
    templateSha = createHash('sha256')
      .update(await fs.readFile(template))
      .digest('hex');
  }
  for (const img of images) {
    const name = `${img.stem}-dockerhash-${img.dockerhash}.sif`;
    const hashed: Record<string, ReturnType<typeof statKey>> = {};
    for (const [i, dir] of img.dirs.entries()) {
      const file = path.join(root, dir, name);
      if (i === 0) await fs.copyFile(template, file);
      else await fs.link(path.join(root, img.dirs[0], name), file);
    }
    for (const dir of img.dirs) hashed[`${dir}/${name}`] = statKey(await fs.stat(path.join(root, dir, name)));
    const st = await fs.stat(path.join(root, img.dirs[0], name));
    await writeLedger(tree, {
      name,
      sha256: templateSha,
      size: st.size,
      stem: img.stem,
      dockerhash: img.dockerhash,
      recipe: 'mpi4py',
      imageCreated: new Date(now - img.daysOld * 86_400_000).toISOString(),
      params: { rocm: img.rocm },
      labels: {},
      stagedAt: new Date(now - img.daysOld * 86_400_000).toISOString(),
      stagedBy: 'test',
      hashed,
    });
  }
  return tree;
}
