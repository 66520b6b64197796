/**
 * `npm run bench:one-read [-- --gib 1,4] [--seed N] [--chart FILE]`: the
 * release's work after the build and the conversion, each beside its bare
 * baseline in the same run, on test images made here from seeded random
 * data (the seed is printed; the same seed makes the same image):
 *  - post-build overhead: one read of the image (leak scan + archive +
 *    SIF, convert/one-read.ts) against bare `docker save | mksquashfs -tar`;
 *  - convert: `sifkit convert docker-daemon:` against bare
 *    `docker export | mksquashfs -tar`;
 *  - node's own peak RSS (VmHWM) of each, and its growth from the
 *    smallest size to the largest.
 *  - the share of each image's layer bytes that a converter on mksquashfs
 *    could take before the stream ends (stream-order.ts); `--order-of
 *    IMAGE,...` adds that figure for other images (the example's, say).
 * Default: 1 GiB, three interleaved rounds (`--runs N`), the median of
 * each figure: about six minutes here; `--gib 1,4` adds the 4 GiB image.
 * sifkit's node runs with the flags the sifkit command gives it (NODE_FLAGS).
 * Writes the ratios as an SVG chart (bench/chart.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { peakRssMiB } from '../src/util/process';
import { writeRatioChart, type RatioBar } from './chart';
import { finalBeforeEnd, streamOrder } from './stream-order';
import { NODE_FLAGS } from '../src/cli/node-flags';
import { median, printTable, type Figure } from './table';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const CHILD = path.join(__dirname, 'one-read-child.js');
const MiB = 1048576;
const SQUASH = ['-noappend', '-comp', 'gzip', '-quiet', '-no-progress'];

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** `bytes` of seeded pseudo-random data: AES-256-CTR over zeros, keyed by the seed. */
function seeded(seed: string, name: string, bytes: number): Readable {
  const key = createHash('sha256').update(`${seed}/${name}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  let left = bytes;
  return Readable.from(
    (function* () {
      while (left > 0) {
        const n = Math.min(left, MiB);
        left -= n;
        const block = cipher.update(zeros.subarray(0, n));
        // Half the files text (hex), as compressible as real libraries; the rest random bytes.
        yield name.endsWith('.txt') ? Buffer.from(block.toString('hex').slice(0, n)) : block;
      }
    })(),
  );
}

/** Makes (once per seed and size) a test image of about `gib` GiB: 4 layers of 4 MiB files and small ones, one deleting. */
async function benchImage(gib: number, seed: string): Promise<string> {
  const tag = `sifkit-bench/one-read-h34:${gib}g-s${seed}`;
  try {
    execFileSync('docker', ['image', 'inspect', tag], { stdio: 'ignore' });
    return tag;
  } catch {
    /* make it */
  }
  const dir = await fs.mkdtemp(path.join(process.env.SIFKIT_BENCH_DIR ?? os.tmpdir(), 'sifkit-one-read-ctx-'));
  try {
    const perLayer = Math.round((gib * 1024) / 4 / 4); // 4 MiB files per layer
    const lines = ['FROM sifkit-test/busybox:latest'];
    for (let l = 0; l < 4; l++) {
      const d = path.join(dir, `l${l}`);
      await fs.mkdir(path.join(d, 'small'), { recursive: true });
      for (let i = 0; i < perLayer; i++) {
        const name = `f${i}.${i % 2 ? 'txt' : 'bin'}`;
        await pipeline(seeded(seed, `l${l}/${name}`, 4 * MiB), createWriteStream(path.join(d, name)));
      }
      for (let i = 0; i < 500; i++)
        await pipeline(
          seeded(seed, `l${l}/small/s${i}`, ((i % 8) + 1) * 1024),
          createWriteStream(path.join(d, 'small', `s${i}`)),
        );
      lines.push(`COPY l${l} /data/l${l}`);
    }
    // Whiteouts, as real images have.
    lines.push('RUN rm -rf /data/l0/small /data/l1/f1.txt', 'CMD ["/bin/sh"]');
    await fs.writeFile(path.join(dir, 'Dockerfile'), lines.join('\n') + '\n');
    console.error(`making ${tag} (${gib} GiB, seed ${seed}, once)…`);
    execFileSync('docker', ['build', '-q', '-t', tag, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  return tag;
}

/** Runs a child, timing it and sampling its own peak RSS (VmHWM, not its children's). */
interface Measured {
  seconds: number;
  peakMiB: number;
  stdout: string;
}

function measured(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1', ...env } });
    let peak = 0;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const poll = setInterval(() => (peak = Math.max(peak, peakRssMiB(child.pid) ?? 0)), 50);
    child.on('close', (code) => {
      clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code === 0) resolve({ seconds, peakMiB: peak, stdout });
      else reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr}`));
    });
  });
}

/** What bench/one-read-child.ts prints. */
interface ChildOut {
  seconds: number;
  streamEnd: number;
  sif: number;
  fallback?: string;
}

/** Layer bytes that could go into mksquashfs before the save stream ends, against all of them. */
function earlyFigure(what: string, f: { early: number; total: number }): Figure {
  return {
    figure: `  layer MiB convertible before the stream ends, ${what}`,
    sifkit: f.early / MiB,
    baseline: f.total / MiB,
    unit: 'MiB',
    target: '-',
    met: true,
  };
}

const bash = (script: string) => measured('bash', ['-o', 'pipefail', '-c', script]);

/** One round's figures: each sifkit run next to its baseline. */
interface Round {
  bareSave: number;
  twoPass: Measured;
  read: Measured;
  bareExport: number;
  convert: Measured;
  readOut: ChildOut;
  twoOut: ChildOut;
}

/** One round on `image`: bare save|mksquashfs, the read in two passes and during the read, bare export|mksquashfs, convert. */
async function round(image: string, out: (name: string) => string): Promise<Round> {
  const squash = SQUASH.join(' ');
  const bareSave = await bash(`docker save ${image} | mksquashfs - ${out('bare-save.sqfs')} -tar ${squash}`);
  await fs.rm(out('bare-save.sqfs'), { force: true });
  // The same read converting after the stream (two passes over the archive), as before issue 27.1.
  const twoPass = await measured(
    process.execPath,
    [...NODE_FLAGS, CHILD, image, out('image.tar'), out('two-pass.sif')],
    {
      SIFKIT_CONVERT: 'two-pass',
    },
  );
  await fs.rm(out('image.tar'), { force: true });
  const read = await measured(process.execPath, [...NODE_FLAGS, CHILD, image, out('image.tar'), out('one-read.sif')]);
  await fs.rm(out('image.tar'), { force: true });
  await fs.rm(out('one-read.sif'), { force: true });
  await fs.rm(out('two-pass.sif'), { force: true });
  const id = execFileSync('docker', ['create', image]).toString().trim();
  let bareExport;
  try {
    bareExport = await bash(`docker export ${id} | mksquashfs - ${out('bare-export.sqfs')} -tar ${squash}`);
  } finally {
    execFileSync('docker', ['rm', id], { stdio: 'ignore' });
    await fs.rm(out('bare-export.sqfs'), { force: true });
  }
  // As the sifkit command runs it (bin/sifkit: node with NODE_FLAGS).
  const convert = await measured(process.execPath, [
    ...NODE_FLAGS,
    CLI,
    'convert',
    `docker-daemon:${image}`,
    '-o',
    out('c.sif'),
  ]);
  await fs.rm(out('c.sif'), { force: true });
  return {
    bareSave: bareSave.seconds,
    twoPass,
    read,
    bareExport: bareExport.seconds,
    convert,
    readOut: JSON.parse(read.stdout) as ChildOut,
    twoOut: JSON.parse(twoPass.stdout) as ChildOut,
  };
}

async function main(): Promise<void> {
  const sizes = flag('gib', '1').split(',').map(Number);
  const runs = Number(flag('runs', '3'));
  const seed = flag('seed', String(Date.now() % 100000));
  const chart = path.resolve(flag('chart', 'one-read-bench.svg'));
  console.error(`seed ${seed} (--seed ${seed} makes the same images)`);
  const dir = await fs.mkdtemp(path.join(process.env.SIFKIT_BENCH_DIR ?? os.tmpdir(), 'sifkit-one-read-bench-'));
  const figures: Figure[] = [];
  const bars: RatioBar[] = [];
  const peaks = { read: [] as number[], convert: [] as number[] };
  try {
    for (const gib of sizes) {
      const image = await benchImage(gib, seed);
      const out = (n: string) => path.join(dir, n);
      // Paired runs, interleaved (each sifkit figure beside its baseline in the same round): the median of each.
      const rounds: Round[] = [];
      for (let r = 0; r < runs; r++) rounds.push(await round(image, out));
      // Each round's pair too: the spread says how far one median can be trusted on this machine.
      for (const [i, r] of rounds.entries())
        console.error(
          `${gib} GiB round ${i + 1}: post-build ${r.read.seconds.toFixed(2)}/${r.bareSave.toFixed(2)} s = ${(r.read.seconds / r.bareSave).toFixed(3)}, ` +
            `convert ${r.convert.seconds.toFixed(2)}/${r.bareExport.toFixed(2)} s = ${(r.convert.seconds / r.bareExport).toFixed(3)}`,
        );
      const paired = (ratio: (r: Round) => number) => {
        const all = rounds.map(ratio);
        return `${median(all).toFixed(3)} (${Math.min(...all).toFixed(3)} to ${Math.max(...all).toFixed(3)})`;
      };
      console.error(
        `${gib} GiB paired ratios, median (range): post-build ${paired((r) => r.read.seconds / r.bareSave)}, ` +
          `convert ${paired((r) => r.convert.seconds / r.bareExport)}`,
      );
      const mid = (pick: (r: Round) => number) => median(rounds.map(pick));
      const bareSave = { seconds: mid((r) => r.bareSave) };
      const twoPass = { seconds: mid((r) => r.twoPass.seconds) };
      const read = { seconds: mid((r) => r.read.seconds), peakMiB: mid((r) => r.read.peakMiB) };
      const bareExport = { seconds: mid((r) => r.bareExport) };
      const conv = { seconds: mid((r) => r.convert.seconds), peakMiB: mid((r) => r.convert.peakMiB) };
      const readOut = { streamEnd: mid((r) => r.readOut.streamEnd), sif: rounds[0].readOut.sif };
      const twoOut = { streamEnd: mid((r) => r.twoOut.streamEnd), sif: rounds[0].twoOut.sif };
      const fallback = rounds.find((r) => r.readOut.fallback)?.readOut.fallback;
      if (fallback) console.error(`the read converted in two passes: ${fallback}`);
      peaks.read.push(read.peakMiB);
      peaks.convert.push(conv.peakMiB);
      const over = read.seconds / bareSave.seconds;
      const cv = conv.seconds / bareExport.seconds;
      figures.push(
        {
          figure: `post-build: scan+archive+convert, ${gib} GiB (one read, median of ${runs})`,
          sifkit: read.seconds,
          baseline: bareSave.seconds,
          unit: 's',
          target: 'ratio <= 1.10',
          met: over <= 1.1,
        },
        {
          figure: `convert docker-daemon:, ${gib} GiB (median of ${runs})`,
          sifkit: conv.seconds,
          baseline: bareExport.seconds,
          unit: 's',
          target: 'ratio <= 1.05',
          met: cv <= 1.05,
        },
        {
          figure: `one read, conversion during the read vs after it, ${gib} GiB`,
          sifkit: read.seconds,
          baseline: twoPass.seconds,
          unit: 's',
          target: '< 1',
          met: read.seconds < twoPass.seconds,
        },
        {
          // Conversion during the read (27 item 1): each layer squashed as it streams; what is left
          // after the stream is the final tables. Two passes: all of mksquashfs's work is left.
          figure: `  left after the stream (tables | mksquashfs), ${gib} GiB`,
          sifkit: read.seconds - readOut.streamEnd,
          baseline: twoPass.seconds - twoOut.streamEnd,
          unit: 's',
          target: '-',
          met: true,
        },
        {
          figure: `  SIF size, during the read vs two passes, ${gib} GiB`,
          sifkit: readOut.sif / MiB,
          baseline: twoOut.sif / MiB,
          unit: 'MiB',
          target: '-',
          met: true,
        },
        earlyFigure(`${gib} GiB bench image`, finalBeforeEnd(await streamOrder(image))),
        { figure: `node peak RSS, one read, ${gib} GiB`, sifkit: read.peakMiB, unit: 'MiB', target: '-', met: true },
        { figure: `node peak RSS, convert, ${gib} GiB`, sifkit: conv.peakMiB, unit: 'MiB', target: '-', met: true },
      );
      bars.push(
        {
          group: 'one read of each image',
          label: `post-build overhead, ${gib} GiB`,
          ratio: over,
          target: 1.1,
          baseline: 'docker save | mksquashfs -tar',
        },
        {
          group: 'one read of each image',
          label: `converting during the read, ${gib} GiB`,
          ratio: read.seconds / twoPass.seconds,
          baseline: 'converting after it (two passes)',
        },
        {
          group: 'one read of each image',
          label: `convert, ${gib} GiB`,
          ratio: cv,
          target: 1.05,
          baseline: 'docker export | mksquashfs -tar',
        },
      );
    }
    if (sizes.length > 1) {
      const [lo, hi] = [sizes[0], sizes[sizes.length - 1]];
      for (const [what, p] of [
        ['one read', peaks.read],
        ['convert', peaks.convert],
      ] as const) {
        const growth = p[p.length - 1] / p[0];
        figures.push({
          figure: `node peak RSS, ${what}, ${hi} GiB over ${lo} GiB`,
          sifkit: p[p.length - 1],
          baseline: p[0],
          unit: 'MiB',
          target: 'ratio <= 1.2',
          met: growth <= 1.2,
        });
        bars.push({
          group: 'memory stays flat',
          label: `node peak RSS, ${what}, ${hi} over ${lo} GiB`,
          ratio: growth,
          target: 1.2,
          baseline: `the ${lo} GiB run`,
        });
      }
    }
    for (const other of flag('order-of', '').split(',').filter(Boolean))
      figures.push(earlyFigure(other, finalBeforeEnd(await streamOrder(other))));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  printTable(figures);
  await writeRatioChart(chart, `sifkit one-read bench (seed ${seed})`, bars);
  console.log(`chart: ${chart}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
