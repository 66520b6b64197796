import { execSync, spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { timed, type Figure } from './table';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

/** Runs the CLI, sampling its peak RSS (VmHWM) from /proc while it runs. */
function runWithPeak(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CI: '1' } });
    let peak = 0;
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        /* exited */
      }
    }, 50);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code === 0) resolve(peak);
      else reject(new Error(`convert failed: ${stderr}`));
    });
  });
}

/**
 * Converting an image from the engine to a SIF, against the least a
 * converter can do: `docker export` of a container (the engine flattens)
 * piped into the same mksquashfs. Ours saves, flattens and adds the
 * apptainer tree on top.
 */
export async function convertBenches(): Promise<Figure[]> {
  const image = process.env.SIFKIT_BENCH_IMAGE ?? 'lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4';
  try {
    execSync(`docker image inspect ${image}`, { stdio: 'ignore' });
  } catch {
    console.error(`convert bench skipped: no image ${image} in the engine (run npm run demo first)`);
    return [];
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-bench-convert-'));
  try {
    const size = Number(execSync(`docker image inspect -f '{{.Size}}' ${image}`).toString()) / 1048576;
    const [base] = await timed(async () => {
      const id = execSync(`docker create ${image} /bin/true`).toString().trim();
      try {
        execSync(`docker export ${id} | mksquashfs - ${dir}/base.sqfs -tar -noappend -comp gzip -quiet -no-progress`);
      } finally {
        execSync(`docker rm ${id}`);
      }
    });
    let peak = 0;
    const [ours] = await timed(async () => {
      peak = await runWithPeak(['convert', `docker-daemon:${image}`, '-o', path.join(dir, 'ours.sif')]);
    });
    return [
      { figure: `convert ${image.split(':')[0]} (${size.toFixed(0)} MiB image) to SIF (s; baseline docker export | mksquashfs -tar)`, sifkit: ours, baseline: base, unit: 's', target: 'ratio <= 1.5', met: ours / base <= 1.5 },
      { figure: 'convert: peak RSS of the sifkit process (MiB)', sifkit: peak, unit: 'MiB', target: '<= 256 MiB, whatever the image size', met: peak <= 256 },
    ];
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
