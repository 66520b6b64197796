import { execSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSif } from '../src/sif/file';
import { Arch, DataType, FsType, PartType } from '../src/sif/format';
import { inspectMetadata } from '../src/convert/singularity';
import { sha256File } from '../src/util/files';
import { openTree } from '../src/tree/root';
import { stage } from '../src/tree/stage';
import { promote } from '../src/tree/promote';
import { treeStatus } from '../src/tree/status';
import { writeLedger, statKey } from '../src/tree/ledger';
import { timed, type Figure } from './table';
import { parsePolicy } from '../src/tree/policy';
import { computePlan } from '../src/tree/retire';

function meta(stem: string, dockerhash: string, created: string): Buffer {
  return Buffer.from(
    JSON.stringify(
      inspectMetadata(
        '',
        {
          'io.sifkit.stem': stem,
          'io.sifkit.dockerhash': dockerhash,
          'org.opencontainers.image.created': created,
          'io.sifkit.param.rocm': '6.2.0',
        },
        '',
        '',
      ),
    ),
  );
}

/** A SIF of `bytes` whose partition starts with the squashfs magic (enough for the tree). */
async function bigSif(file: string, bytes: number, stem: string, dockerhash: string): Promise<void> {
  const part = `${file}.part`;
  execSync(`printf hsqs > ${part} && head -c ${bytes} /dev/urandom >> ${part}`);
  await writeSif(file, [
    {
      kind: 'data',
      dataType: DataType.genericJson,
      name: 'inspect-metadata.json',
      data: meta(stem, dockerhash, '2026-01-01T00:00:00Z'),
    },
    {
      kind: 'partition',
      name: '',
      file: part,
      partition: { fsType: FsType.squash, partType: PartType.primSys, arch: Arch.amd64 },
    },
  ]);
  await fs.rm(part);
}

/**
 * Promote of a big SIF on the same file system (a hard link) against `cp`
 * of the same file; checksum throughput against sha256sum; status over
 * 10,000 images.
 */
export async function treeBenches(): Promise<Figure[]> {
  const gib = Number(process.env.SIFKIT_BENCH_PROMOTE_GIB ?? '4');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-bench-tree-'));
  try {
    const root = path.join(dir, 'root');
    await fs.mkdir(root);
    const tree = await openTree(root, true);
    const stem = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
    const sif = path.join(dir, 'big.sif');
    await bigSif(sif, gib * 1024 ** 3, stem, 'aaaaaaaaaaaa');
    execSync(`cat ${sif} > /dev/null`);
    const [sumSecs] = await timed(async () => execSync(`sha256sum ${sif}`));
    const [oursSecs] = await timed(() => sha256File(sif));
    const staged = await stage(tree, sif);
    const [cpSecs] = await timed(async () => execSync(`cp ${staged.path} ${dir}/copy.sif`));
    await fs.rm(`${dir}/copy.sif`);
    const [promoteSecs] = await timed(() => promote(tree, staged.name, { to: 'all' }));

    // 10,000 images: small SIFs, half with ledger records, a link per stem.
    const many = await openTree(path.join(dir, 'many'), false).catch(async () => {
      await fs.mkdir(path.join(dir, 'many'));
      return openTree(path.join(dir, 'many'), true);
    });
    const template = path.join(dir, 'template.sif');
    await bigSif(template, 4096, 'x', 'bbbbbbbbbbbb');
    const n = Number(process.env.SIFKIT_BENCH_STATUS_IMAGES ?? '10000');
    for (let i = 0; i < n; i++) {
      const hash = i.toString(16).padStart(12, '0');
      const s = `lumi-app${i % 500}-rocm-6.2.0-python-3.12-app-1.${i % 20}`;
      const name = `${s}-dockerhash-${hash}.sif`;
      const file = path.join(many.tested, name);
      await fs.copyFile(template, file);
      if (i % 2 === 0) {
        const st = await fs.stat(file);
        await writeLedger(many, {
          name,
          sha256: '0'.repeat(64),
          size: st.size,
          stem: s,
          dockerhash: hash,
          params: {},
          labels: {},
          stagedAt: new Date().toISOString(),
          stagedBy: 'bench',
          hashed: { [`tested-containers/${name}`]: statKey(st) },
        });
      }
      if (i < 500) await fs.symlink(`../tested-containers/${name}`, path.join(many.sifImages, `${s}.sif`));
    }
    const [statusSecs, st] = await timed(() => treeStatus(many));
    if (st.images.length !== n) throw new Error(`status saw ${st.images.length} images, expected ${n}`);
    // The retire plan over the same 10,000 images and 2,000 active EasyConfigs.
    const ecDir = path.join(dir, 'easyconfigs');
    for (let i = 0; i < 2000; i++) {
      const sub = path.join(ecDir, 'easybuild/easyconfigs', `a/app${i % 500}`);
      await fs.mkdir(sub, { recursive: true });
      await fs.writeFile(
        path.join(sub, `app${i % 500}-${i}.eb`),
        `easyblock = 'MakeCp'\nlocal_dockerhash = '${(i * 5).toString(16).padStart(12, '0')}'\n`,
      );
    }
    const policy = parsePolicy(
      await fs.readFile(path.join(__dirname, '..', '..', 'pipelines', 'retention.yaml'), 'utf8'),
      'retention.yaml',
    );
    const [planSecs, plan] = await timed(() => computePlan(many, { policy, easyconfigs: ecDir }));
    if (plan.decisions.length !== n) throw new Error(`plan decided ${plan.decisions.length} of ${n}`);
    const mib = gib * 1024;
    return [
      {
        figure: `promote --to all of a ${gib} GiB SIF, same file system (s; baseline cp)`,
        sifkit: promoteSecs,
        baseline: cpSecs,
        unit: 's',
        target: '<= 0.1 s',
        met: promoteSecs <= 0.1,
      },
      {
        figure: `sha256 of a ${gib} GiB SIF (MiB/s; baseline sha256sum)`,
        sifkit: mib / oursSecs,
        baseline: mib / sumSecs,
        unit: 'MiB/s',
        target: 'ratio >= 0.9',
        met: sumSecs / oursSecs >= 0.9,
      },
      {
        figure: `status over ${n} images, half unknown to the ledger (s)`,
        sifkit: statusSecs,
        unit: 's',
        target: '<= 2 s',
        met: statusSecs <= 2,
      },
      {
        figure: `retire plan over ${n} images and 2,000 EasyConfigs (s)`,
        sifkit: planSecs,
        unit: 's',
        target: '<= 2 s',
        met: planSecs <= 2,
      },
    ];
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
