/**
 * Issue 17.6: the leak scan's speed over multi-GiB images, beside the
 * floor of reading the same image out of the engine at all
 * (`docker save IMAGE | sha256sum`), and its peak memory at 1 and 4 GiB
 * (SIFKIT_BENCH_SCAN_GIB=1,4), which must not grow with the image. The
 * images are the convert bench's (made once, kept for both benches).
 */
import { execSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { NODE_FLAGS } from '../src/cli/node-flags';
import { peakRssMiB } from '../src/util/process';
import { benchImage } from './convert.bench';
import { timed, type Figure } from './table';

const MiB = 1048576;

function scanInChild(image: string): Promise<{ seconds: number; bytes: number; files: number; peakMiB: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, path.join(__dirname, 'scan-child.js'), image], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let peak = 0;
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const poll = setInterval(() => {
      peak = Math.max(peak, peakRssMiB(child.pid) ?? 0);
    }, 50);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code === 0) resolve({ ...JSON.parse(out), peakMiB: peak });
      else reject(new Error(`scan of ${image} failed (exit ${code})`));
    });
  });
}

export async function scanBenches(): Promise<Figure[]> {
  const sizes = (process.env.SIFKIT_BENCH_SCAN_GIB ?? '1,4').split(',').map(Number);
  const figures: Figure[] = [];
  const peaks: number[] = [];
  for (const gib of sizes) {
    const image = benchImage(gib);
    // Warm-up: the first read of an image brings its layers into the page cache for both sides.
    execSync(`docker save ${image} | sha256sum`, { shell: '/bin/bash', stdio: ['ignore', 'ignore', 'inherit'] });
    // Alternate floor and scan twice; the faster run of each counts.
    let floor = Infinity;
    let scan = { seconds: Infinity, bytes: 0, files: 0, peakMiB: 0 };
    for (let i = 0; i < 2; i++) {
      const [t] = await timed(async () =>
        execSync(`docker save ${image} | sha256sum`, { shell: '/bin/bash', stdio: ['ignore', 'ignore', 'inherit'] }),
      );
      floor = Math.min(floor, t);
      const s = await scanInChild(image);
      if (s.seconds < scan.seconds) scan = s;
    }
    const mib = scan.bytes / MiB;
    peaks.push(scan.peakMiB);
    figures.push({
      figure: `leak scan of a ${gib} GiB image, ${scan.files} files (MiB/s; baseline docker save | sha256sum)`,
      sifkit: mib / scan.seconds,
      baseline: mib / floor,
      unit: 'MiB/s',
      target: 'ratio >= 0.8',
      met: floor / scan.seconds >= 0.8,
    });
  }
  if (peaks.length > 1) {
    const grow = peaks[peaks.length - 1] / peaks[0];
    figures.push({
      figure: `leak scan peak memory at ${sizes[sizes.length - 1]} GiB (MiB; baseline: at ${sizes[0]} GiB)`,
      sifkit: peaks[peaks.length - 1],
      baseline: peaks[0],
      unit: 'MiB',
      target: 'flat: ratio <= 1.2',
      met: grow <= 1.2,
    });
  }
  return figures;
}
