/**
 * Issue 30: `fetch` is limited by bandwidth, not by sifkit. A set of files
 * (SIFKIT_BENCH_FETCH_MIB in all, default 512, in 8 files) served by a
 * local HTTP server in its own process (bench/throttled-server.ts), then
 * fetched into an empty source cache by fetchSources (4 at a time, every
 * digest checked, fsync'd), side by side with 4 curls at once of the same
 * files, ROUNDS rounds, the median of each:
 *
 * - at loopback speed, against plain curl (-o, no digest) and against curl
 *   doing the same work as fetch: each file through `tee` into its file and
 *   `sha256sum`, the digest compared with the pinned one. Here fetch is
 *   bound by the CPU (it hashes every byte), so its CPU seconds are set
 *   beside those of curl + tee + sha256sum too;
 * - bandwidth-limited: the server sends at most RATE MiB/s in all
 *   (SIFKIT_BENCH_FETCH_RATES, default "100,25"), as a real upstream would;
 *   fetch against plain curl. The target, "limited by bandwidth": <= 1.10.
 *
 * Each figure names the load it was measured at.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { ResolvedSource } from '../src/recipe/sources';
import { fetchSources } from '../src/sources/cache';
import { median, timed, type Figure } from './table';

const run = promisify(execFile);
const SERVER = path.join(__dirname, 'throttled-server.js');
const FILES = 8;
const JOBS = 4;

/** Starts the server on `dir` at `rate` bytes/s (0: no limit); resolves with it and its port once it listens. */
async function startServer(dir: string, rate: number): Promise<{ server: ChildProcess; port: number }> {
  const server = spawn(process.execPath, [SERVER, dir, String(rate)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    lines.once('line', (l) => resolve(Number(l)));
    server.once('exit', (code) => reject(new Error(`bench: the server exited (${code}) before it listened`)));
  });
  return { server, port };
}

/** The children's CPU seconds, from the two lines of the shell's `times` (the last is the children's). */
function childCpu(out: string): number {
  const last = out.trim().split('\n').pop()!;
  return [...last.matchAll(/(\d+)m([\d.]+)s/g)].reduce((a, m) => a + Number(m[1]) * 60 + Number(m[2]), 0);
}

interface Series {
  wall: number[];
  cpu: number[];
}
const series = (): Series => ({ wall: [], cpu: [] });

export async function fetchBenches(): Promise<Figure[]> {
  const total = Number(process.env.SIFKIT_BENCH_FETCH_MIB ?? '512') * 1024 * 1024;
  const rounds = Number(process.env.SIFKIT_BENCH_FETCH_ROUNDS ?? '3');
  const rates = (process.env.SIFKIT_BENCH_FETCH_RATES ?? '100,25').split(',').filter(Boolean).map(Number);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-bench-fetch-'));
  const served = path.join(root, 'served');
  await fs.mkdir(served);
  const files: { name: string; sha256: string }[] = [];
  try {
    for (let i = 0; i < FILES; i++) {
      const name = `f${i}.bin`;
      // Random bytes: nothing on the way can compress them.
      const h = createHash('sha256');
      const fh = await fs.open(path.join(served, name), 'w');
      for (let left = total / FILES; left > 0; left -= 1 << 20) {
        const chunk = randomBytes(Math.min(1 << 20, left));
        h.update(chunk);
        await fh.write(chunk);
      }
      await fh.close();
      files.push({ name, sha256: h.digest('hex') });
    }
    const mib = total / (1024 * 1024);
    const figures: Figure[] = [];
    for (const rateMib of [0, ...rates]) {
      const { server, port } = await startServer(served, rateMib * 1024 * 1024);
      try {
        const m = await measure(root, port, files, rounds, rateMib === 0);
        const load = `load ${median(m.loads).toFixed(1)}`;
        const fetchSecs = median(m.fetch.wall);
        const curlSecs = median(m.curl.wall);
        if (rateMib === 0) {
          const checkedSecs = median(m.checked.wall);
          const fetchCpu = median(m.fetch.cpu);
          const checkedCpu = median(m.checked.cpu);
          figures.push(
            {
              figure: `fetch ${FILES} files, ${mib.toFixed(0)} MiB at loopback speed, vs curl (wall s, median of ${rounds}, ${load})`,
              sifkit: fetchSecs,
              baseline: curlSecs,
              unit: 's',
              target: 'informational (curl checks no digest)',
              met: true,
            },
            {
              figure: `the same, vs curl | tee | sha256sum, digest compared (the same work; ${load})`,
              sifkit: fetchSecs,
              baseline: checkedSecs,
              unit: 's',
              target: 'ratio <= 1.10 (CPU-bound here)',
              met: fetchSecs / checkedSecs <= 1.1,
            },
            {
              figure: `the same, CPU seconds: fetch vs curl + tee + sha256sum (${load})`,
              sifkit: fetchCpu,
              baseline: checkedCpu,
              unit: 's',
              target: 'ratio <= 1.0',
              met: fetchCpu / checkedCpu <= 1.0,
            },
          );
        } else {
          figures.push({
            figure: `fetch ${mib.toFixed(0)} MiB from a server sending ${rateMib} MiB/s in all, vs curl (wall s, median of ${rounds}, ${load})`,
            sifkit: fetchSecs,
            baseline: curlSecs,
            unit: 's',
            target: 'ratio <= 1.10 (bandwidth-bound)',
            met: fetchSecs / curlSecs <= 1.1,
          });
        }
      } finally {
        server.kill('SIGTERM');
      }
    }
    return figures;
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

/** ROUNDS rounds of curl, (at loopback) curl with the digest checked, then fetch, each into an empty directory. */
async function measure(
  root: string,
  port: number,
  files: { name: string; sha256: string }[],
  rounds: number,
  withChecked: boolean,
): Promise<{ curl: Series; checked: Series; fetch: Series; loads: number[] }> {
  const url = (name: string) => `http://127.0.0.1:${port}/${name}`;
  const sources: ResolvedSource[] = files.map((f, i) => ({
    name: `f${i}`,
    kind: 'file',
    url: url(f.name),
    sha256: f.sha256,
    submodules: false,
    servedPath: `sources/sha256/${f.sha256}`,
  }));
  const dir = path.join(root, 'curl');
  const urls = files.map((f) => url(f.name)).join(' ');
  const pairs = files.map((f) => `${url(f.name)} ${f.sha256}`).join(' ');
  // xargs -P 4: four at once, as fetch's default --jobs 4. `times` prints the children's CPU.
  const curlCmd = `printf '%s\\n' ${urls} | xargs -P ${JOBS} -n 1 sh -c 'curl -fsS -o "${dir}/$(basename "$0")" "$0"' ; times`;
  // The same work as fetch: the bytes to their file and through sha256sum as they come, the digest compared.
  const checkedCmd = `printf '%s %s\\n' ${pairs} | xargs -P ${JOBS} -n 2 sh -c 'curl -fsS "$0" | tee "${dir}/$(basename "$0")" | sha256sum | grep -q "^$1 "' ; times`;
  const out = { curl: series(), checked: series(), fetch: series(), loads: [] as number[] };
  // Each timed step starts with nothing left to write back: curl does not fsync, so the kernel
  // would otherwise write its files while fetch runs, and bill fetch's fsync for them.
  const fresh = async () => {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir);
    await run('sync');
  };
  const shell = async (s: Series, cmd: string) => {
    await fresh();
    const [secs, r] = await timed(() => run('sh', ['-c', cmd], { maxBuffer: 1 << 20 }));
    s.wall.push(secs);
    s.cpu.push(childCpu(r.stdout));
  };
  for (let r = 0; r < rounds; r++) {
    await shell(out.curl, curlCmd);
    if (withChecked) await shell(out.checked, checkedCmd);
    const cache = path.join(root, `cache-${r}`);
    await fresh();
    const cpu = process.cpuUsage();
    const [secs, got] = await timed(() =>
      fetchSources(sources, { cache, jobs: JOBS, signal: new AbortController().signal }),
    );
    const used = process.cpuUsage(cpu);
    out.fetch.wall.push(secs);
    out.fetch.cpu.push((used.user + used.system) / 1e6);
    out.loads.push(os.loadavg()[0]);
    if (got.some((g) => g.how !== 'fetched')) throw new Error('bench: not every file was fetched');
    await fs.rm(cache, { recursive: true, force: true });
  }
  return out;
}
