/**
 * Host compatibility at scale, beside its baseline in the same run:
 *  - one large SIF (the convert bench's test image, SIFKIT_BENCH_COMPAT_GIB,
 *    default 1) checked against a snapshot of this host, against the time
 *    `unsquashfs -l` takes to list it (target: at most 2x);
 *  - a tree of 200 promoted images (hard links to one SIF, so one content:
 *    checked once; SIFKIT_BENCH_COMPAT_TREE_SIF, default the large one)
 *    against a snapshot (target: at most 60 s), beside one image alone.
 */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sifImageFiles, unsquashfsFiles } from '../src/compat/image';
import { benchImage } from './convert.bench';
import { timed, type Figure } from './table';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

function cli(args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CI: '1' },
    maxBuffer: 1 << 28,
  });
}

function partitionOffset(sif: string): number {
  return JSON.parse(cli(['inspect', sif, '--json'])).partition.offset;
}

export async function compatBenches(): Promise<Figure[]> {
  const gib = Number(process.env.SIFKIT_BENCH_COMPAT_GIB ?? '1');
  const root = process.env.SIFKIT_BENCH_DIR ?? os.tmpdir();
  const work = await fs.mkdtemp(path.join(root, 'sifkit-bench-compat-'));
  const figures: Figure[] = [];
  try {
    // SIFKIT_BENCH_COMPAT_SIF: an existing SIF to measure instead of the convert bench's image.
    const sif = process.env.SIFKIT_BENCH_COMPAT_SIF ?? path.join(root, `sifkit-bench-compat-${gib}g-v1.sif`);
    if (!existsSync(sif)) {
      const image = benchImage(gib);
      console.error(`converting ${image} to ${sif} (once)…`);
      cli(['convert', `docker-daemon:${image}`, '-o', sif]);
    }
    const snap = path.join(work, 'here.json');
    cli([
      'host',
      'snapshot',
      '--bind',
      '/usr/lib/x86_64-linux-gnu/libz.so.1:/usr/lib/x86_64-linux-gnu/libz.so.1',
      '-o',
      snap,
    ]);
    const offset = String(partitionOffset(sif));
    // Untimed first runs: both read the same file through the same page cache.
    execSync(`unsquashfs -o ${offset} -l ${sif} > /dev/null`);
    const [listSecs] = await timed(async () => execSync(`unsquashfs -o ${offset} -l ${sif} > /dev/null`));
    const [ours, out] = await timed(async () => cli(['compat', sif, '--host', snap, '--json']));
    const objects = JSON.parse(out).reports[0].objects;
    const size = (await fs.stat(sif)).size / 2 ** 30;
    figures.push({
      figure: `compat of a ${size.toFixed(1)} GiB SIF, ${objects} ELF objects (s; baseline unsquashfs -l)`,
      sifkit: ours,
      baseline: listSecs,
      unit: 's',
      target: 'ratio <= 2',
      met: ours / listSecs <= 2,
    });

    // In process, without Node's start: the read alone (sifkit's squashfs reader), against the
    // listing, and against the same read through unsquashfs -lln and -cat (the reader it replaced).
    const [readSecs] = await timed(() => sifImageFiles(sif));
    figures.push({
      figure: `compat's read of that SIF in process, squashfs reader (s; baseline unsquashfs -l)`,
      sifkit: readSecs,
      baseline: listSecs,
      unit: 's',
      target: 'ratio <= 2',
      met: readSecs / listSecs <= 2,
    });
    const [catSecs] = await timed(() => unsquashfsFiles(sif, Number(offset), {}));
    figures.push({
      figure: `compat's read of that SIF in process, squashfs reader (s; baseline unsquashfs -lln and -cat)`,
      sifkit: readSecs,
      baseline: catSecs,
      unit: 's',
      target: 'ratio < 1',
      met: readSecs < catSecs,
    });

    // The tree: 200 promoted images, one content.
    const tree = path.join(work, 'tree');
    const eb = path.join(tree, 'easybuild-sif-images');
    await fs.mkdir(eb, { recursive: true });
    const example = process.env.SIFKIT_BENCH_COMPAT_TREE_SIF ?? sif;
    for (let i = 0; i < 200; i++)
      await fs.link(
        example,
        path.join(eb, `lumi-bench-compat-${i}-dockerhash-${i.toString(16).padStart(12, '0')}.sif`),
      );
    const [alone] = await timed(async () => cli(['compat', example, '--host', snap, '--json']));
    const [treeSecs, treeOut] = await timed(async () => cli(['compat', '--root', tree, '--host', snap, '--json']));
    const doc = JSON.parse(treeOut);
    figures.push({
      figure: `compat --root over ${doc.images.length} promoted images, one content (s; baseline: that one image alone)`,
      sifkit: treeSecs,
      baseline: alone,
      unit: 's',
      target: '<= 60 s',
      met: treeSecs <= 60,
    });
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return figures;
}
