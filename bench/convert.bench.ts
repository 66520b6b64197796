/**
 * Converting an image in the engine to a SIF, beside two baselines run on
 * the same image in the same run:
 *  - bare: `docker export | mksquashfs - X -tar` (the engine flattens; the
 *    least any converter can do);
 *  - apptainer-like: `docker save` to a tar file, unpack the layers to a
 *    directory (whiteouts applied), mksquashfs the directory, copy the
 *    squashfs into a SIF with siftool (what apptainer build does).
 * Test images of 1 and 4 GiB (SIFKIT_BENCH_CONVERT_GIB=1,4) are made
 * locally, once, from debian:bookworm-slim: a third random bytes, a third
 * base64 text, a third numeric text, and thousands of small files, in
 * layers, one of which deletes files from a lower one. Then every
 * compression on the smallest image, for time and size.
 */
import { execSync, spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { COMPRESSIONS } from '../src/convert/squash-options';
import { NODE_FLAGS } from '../src/cli/node-flags';
import { peakRssMiB } from '../src/util/process';
import { timed, type Figure } from './table';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const MiB = 1048576;

interface Run {
  peakMiB: number;
  doc: { sif: { size: number; mksquashfsPeakMiB: number; compression: string } };
}

/** Runs the CLI, sampling its own peak RSS (VmHWM, not its children's) from /proc. */
function runWithPeak(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: '1' },
    });
    let peak = 0;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const poll = setInterval(() => {
      peak = Math.max(peak, peakRssMiB(child.pid) ?? 0);
    }, 50);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code === 0) resolve({ peakMiB: peak, doc: JSON.parse(stdout) });
      else reject(new Error(`convert failed: ${stderr}`));
    });
  });
}

function sh(cmd: string): void {
  execSync(cmd, { stdio: ['ignore', 'ignore', 'inherit'], shell: '/bin/bash', maxBuffer: 1 << 26 });
}

/** One RUN making `mib` MiB in `dir`: random, base64 and numeric text in 4 MiB files, and 1000 small files. */
function dataLayer(dir: string, mib: number): string {
  const n = Math.max(1, Math.round(mib / 12)); // 3 files of 4 MiB per round
  return `RUN mkdir -p ${dir}/small && cd ${dir} && for i in $(seq ${n}); do \\
 head -c 4194304 /dev/urandom > r$i.bin; head -c 3145728 /dev/urandom | base64 > b$i.txt; seq $((i * 1000000)) $((i * 1000000 + 540000)) > s$i.txt; done \\
 && for i in $(seq 1000); do head -c $((i % 8 * 1024 + 100)) /dev/urandom > small/f$i; done`;
}

/** Builds (once) a test image of about `gib` GiB. */
export function benchImage(gib: number): string {
  const tag = `sifkit-bench/convert:${gib}g-v1`;
  try {
    execSync(`docker image inspect ${tag}`, { stdio: 'ignore' });
    return tag;
  } catch {
    /* build it */
  }
  const layers = gib <= 1 ? 4 : 8;
  const per = (gib * 1024) / layers;
  const lines = ['FROM debian:bookworm-slim'];
  for (let l = 0; l < layers; l++) lines.push(dataLayer(`/data/l${l}`, per));
  // Whiteouts and an opaque directory, as real images have.
  lines.push(
    'RUN rm -rf /data/l0/small /data/l1/r1.bin /data/l1/small && mkdir /data/l1/small && echo new > /data/l1/small/only',
  );
  lines.push('ENV BENCH=1\nCMD ["/bin/sh"]');
  const dir = execSync('mktemp -d').toString().trim();
  try {
    execSync(`cat > ${dir}/Dockerfile`, { input: lines.join('\n') + '\n' });
    console.error(`making ${tag} (${gib} GiB, once)…`);
    sh(`docker build -q -t ${tag} ${dir}`);
  } finally {
    execSync(`rm -rf ${dir}`);
  }
  return tag;
}

/** What apptainer build does with a docker-daemon image, step by step with the standard tools. */
function apptainerLike(image: string, dir: string): void {
  const tarFile = path.join(dir, 'saved.tar');
  const rootfs = path.join(dir, 'rootfs');
  const unpacked = path.join(dir, 'saved');
  sh(`docker save ${image} -o ${tarFile} && mkdir -p ${rootfs} ${unpacked} && tar -C ${unpacked} -xf ${tarFile}`);
  const manifest = JSON.parse(readFileSync(path.join(unpacked, 'manifest.json'), 'utf8')) as Array<{
    Layers: string[];
  }>;
  for (const layer of manifest[0].Layers) {
    const file = path.join(unpacked, layer);
    // Whiteouts first (they name lower files), then the layer over the rest.
    const names = execSync(`tar -tf ${file}`, { maxBuffer: 1 << 28 })
      .toString()
      .split('\n');
    for (const n of names.filter((x) => path.basename(x).startsWith('.wh.'))) {
      const base = path.basename(n);
      const target =
        base === '.wh..wh..opq'
          ? path.join(rootfs, path.dirname(n), '*')
          : path.join(rootfs, path.dirname(n), base.slice(4));
      sh(`rm -rf ${target}`);
    }
    sh(`tar -C ${rootfs} -xf ${file} --exclude='.wh.*'`);
  }
  sh(`rm -rf ${unpacked} ${tarFile}`);
  sh(`mksquashfs ${rootfs} ${dir}/image.sqfs -noappend -comp gzip -quiet -no-progress && rm -rf ${rootfs}`);
  sh(
    `siftool new ${dir}/apptainer.sif && siftool add ${dir}/apptainer.sif ${dir}/image.sqfs --datatype 4 --parttype 1 --partfs 1 --partarch 2 && rm ${dir}/image.sqfs`,
  );
}

async function bare(image: string, dir: string): Promise<void> {
  const id = execSync(`docker create ${image}`).toString().trim();
  try {
    sh(`docker export ${id} | mksquashfs - ${dir}/bare.sqfs -tar -noappend -comp gzip -quiet -no-progress`);
  } finally {
    execSync(`docker rm ${id}`);
    await fs.rm(path.join(dir, 'bare.sqfs'), { force: true });
  }
}

export async function convertBenches(): Promise<Figure[]> {
  try {
    execSync('docker image inspect debian:bookworm-slim', { stdio: 'ignore' });
  } catch {
    console.error('convert bench skipped: no debian:bookworm-slim in the engine (run scripts/services.sh)');
    return [];
  }
  const sizes = (process.env.SIFKIT_BENCH_CONVERT_GIB ?? '1,4').split(',').map(Number);
  const figures: Figure[] = [];
  const peaks: number[] = [];
  // On the build host's disk, as a real conversion: /tmp may be a small tmpfs.
  const root = process.env.SIFKIT_BENCH_DIR ?? os.tmpdir();
  for (const gib of sizes) {
    const image = benchImage(gib);
    const mib = Number(execSync(`docker image inspect -f '{{.Size}}' ${image}`).toString()) / MiB;
    const dir = await fs.mkdtemp(path.join(root, 'sifkit-bench-convert-'));
    try {
      // An untimed export first, so the first timed run does not pay for a
      // cold page cache the later ones get for free.
      sh(`id=$(docker create ${image}) && docker export $id > /dev/null; docker rm $id > /dev/null`);
      // Bare and ours alternate, twice, and the faster of each counts: on a
      // small machine one run's noise is larger than the gap being measured.
      let baseSecs = Infinity;
      let ours = Infinity;
      let run: Run | undefined;
      for (let round = 0; round < 2; round++) {
        sh('sync');
        baseSecs = Math.min(baseSecs, (await timed(() => bare(image, dir)))[0]);
        sh('sync');
        const [secs, r] = await timed(() =>
          runWithPeak(['convert', `docker-daemon:${image}`, '-o', path.join(dir, 'ours.sif')]),
        );
        await fs.rm(path.join(dir, 'ours.sif'), { force: true });
        ours = Math.min(ours, secs);
        run = !run || r.peakMiB > run.peakMiB ? r : run;
      }
      sh('sync');
      const [appSecs] = await timed(async () => apptainerLike(image, dir));
      await fs.rm(path.join(dir, 'apptainer.sif'), { force: true });
      if (!run) throw new Error('no convert run');
      peaks.push(run.peakMiB);
      const label = `${mib.toFixed(0)} MiB image`;
      figures.push(
        {
          figure: `convert ${label} (s; baseline docker export | mksquashfs -tar)`,
          sifkit: ours,
          baseline: baseSecs,
          unit: 's',
          target: 'ratio <= 1.15',
          met: ours / baseSecs <= 1.15,
        },
        {
          figure: `convert ${label} (s; baseline apptainer-like save, unpack, mksquashfs, copy)`,
          sifkit: ours,
          baseline: appSecs,
          unit: 's',
          target: 'ratio <= 0.8 (1.25x faster)',
          met: ours / appSecs <= 0.8,
        },
        {
          figure: `convert ${label}: peak RSS of sifkit (MiB)`,
          sifkit: run.peakMiB,
          unit: 'MiB',
          target: '<= 300 MiB',
          met: run.peakMiB <= 300,
        },
        {
          figure: `convert ${label}: peak RSS of mksquashfs, -mem 1G (MiB)`,
          sifkit: run.doc.sif.mksquashfsPeakMiB,
          unit: 'MiB',
          target: 'reported',
          met: true,
        },
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
  if (peaks.length > 1) {
    const spread = Math.max(...peaks) / Math.min(...peaks);
    figures.push({
      figure: `convert: sifkit peak RSS, largest / smallest image (${sizes.join(' vs ')} GiB)`,
      sifkit: spread,
      unit: 'x',
      target: '<= 1.25 (flat)',
      met: spread <= 1.25,
    });
  }
  figures.push(...(await compressionFigures(benchImage(sizes[0]), root)));
  return figures;
}

/** Time and size per squashfs compressor, gzip being the baseline. */
async function compressionFigures(image: string, root: string): Promise<Figure[]> {
  const dir = await fs.mkdtemp(path.join(root, 'sifkit-bench-comp-'));
  try {
    const results = new Map<string, { secs: number; mib: number }>();
    for (const c of COMPRESSIONS) {
      const out = path.join(dir, `${c}.sif`);
      const [secs, run] = await timed(() =>
        runWithPeak(['convert', `docker-daemon:${image}`, '-o', out, '--compression', c]),
      );
      results.set(c, { secs, mib: run.doc.sif.size / MiB });
      await fs.rm(out);
    }
    const gzip = results.get('gzip')!;
    return [...results].flatMap(([c, r]) => [
      {
        figure: `convert with ${c}: time (s; baseline gzip)`,
        sifkit: r.secs,
        baseline: gzip.secs,
        unit: 's',
        target: 'reported',
        met: true,
      },
      {
        figure: `convert with ${c}: SIF size (MiB; baseline gzip)`,
        sifkit: r.mib,
        baseline: gzip.mib,
        unit: 'MiB',
        target: 'reported',
        met: true,
      },
    ]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
