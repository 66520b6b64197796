/**
 * Issue 30: `fetch` is limited by bandwidth, not by sifkit. A set of files
 * (SIFKIT_BENCH_FETCH_MIB in all, default 512, in 8 files) served by a
 * local HTTP server (Python's http.server in its own process, so the
 * server does not share this process's event loop with the client), then
 * fetched into an empty source cache by fetchSources (4 at a time,
 * digests checked, fsync'd) and by curl (4 at a time, -o files, no
 * digest), side by side: ROUNDS rounds of curl then fetch, the median of
 * each. On a shared machine wall time swings with the load, so the CPU
 * seconds each spends (fetch in this process; curl's children by the
 * shell's `times`) are printed too, beside curl followed by sha256sum of
 * the same files (the same work: bytes in, digest checked). The target:
 * ratio near 1.
 */
import { spawn, execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { ResolvedSource } from '../src/recipe/sources';
import { fetchSources } from '../src/sources/cache';
import { timed, type Figure } from './table';

const run = promisify(execFile);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitForServer(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await run('curl', ['-fsS', '-o', '/dev/null', url]).then(
      () => true,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no server at ${url}`);
}

export async function fetchBenches(): Promise<Figure[]> {
  const total = Number(process.env.SIFKIT_BENCH_FETCH_MIB ?? '512') * 1024 * 1024;
  const n = 8;
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-bench-fetch-'));
  const served = path.join(root, 'served');
  await fs.mkdir(served);
  const sources: ResolvedSource[] = [];
  const port = await freePort();
  for (let i = 0; i < n; i++) {
    const name = `f${i}.bin`;
    // Random bytes: nothing on the way can compress them.
    const h = createHash('sha256');
    const fh = await fs.open(path.join(served, name), 'w');
    for (let left = total / n; left > 0; left -= 1 << 20) {
      const chunk = randomBytes(Math.min(1 << 20, left));
      h.update(chunk);
      await fh.write(chunk);
    }
    await fh.close();
    const sha256 = h.digest('hex');
    sources.push({
      name: `f${i}`,
      kind: 'file',
      url: `http://127.0.0.1:${port}/${name}`,
      sha256,
      submodules: false,
      servedPath: `sources/sha256/${sha256}`,
    });
  }
  const server = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', served], {
    stdio: 'ignore',
  });
  try {
    await waitForServer(`http://127.0.0.1:${port}/f0.bin`);
    const curlDir = path.join(root, 'curl');
    const urls = sources.map((s) => s.url).join(' ');
    // xargs -P 4: four curls at once, as fetch's default --jobs 4. `times` prints the children's CPU.
    const curlCmd = `printf '%s\\n' ${urls} | xargs -P 4 -n 1 sh -c 'curl -fsS -o "${curlDir}/$(basename "$0")" "$0"'`;
    // The durable baseline: each file flushed to disk once curl has it (`sync -d`), as fetch
    // fsyncs a cache entry before naming it.
    const curlSyncCmd = `printf '%s\\n' ${urls} | xargs -P 4 -n 1 sh -c 'f="${curlDir}/$(basename "$0")" ; curl -fsS -o "$f" "$0" && sync -d "$f"'`;
    const curlCpu = (out: string) =>
      [
        ...out
          .trim()
          .split('\n')
          .pop()!
          .matchAll(/(\d+)m([\d.]+)s/g),
      ].reduce((a, m) => a + Number(m[1]) * 60 + Number(m[2]), 0);
    const rounds = Number(process.env.SIFKIT_BENCH_FETCH_ROUNDS ?? '3');
    const curlWall: number[] = [];
    const curlSyncWall: number[] = [];
    const loads: number[] = [];
    const curlCpus: number[] = [];
    const hashCpus: number[] = [];
    const fetchWall: number[] = [];
    const fetchCpus: number[] = [];
    // Each timed step starts with nothing left to write back: curl does not fsync, so the kernel
    // would otherwise write its files while fetch runs, and bill fetch's fsync for them.
    const settle = () => run('sync');
    for (let r = 0; r < rounds; r++) {
      await fs.rm(curlDir, { recursive: true, force: true });
      await fs.mkdir(curlDir);
      await settle();
      const [secs, out] = await timed(() => run('sh', ['-c', `${curlCmd} ; times`], { maxBuffer: 1 << 20 }));
      curlWall.push(secs);
      curlCpus.push(curlCpu(out.stdout));
      const summed = await run('sh', ['-c', `sha256sum ${curlDir}/* > /dev/null ; times`]);
      hashCpus.push(curlCpu(summed.stdout));
      await fs.rm(curlDir, { recursive: true, force: true });
      await fs.mkdir(curlDir);
      await settle();
      curlSyncWall.push((await timed(() => run('sh', ['-c', curlSyncCmd])))[0]);
      const cache = path.join(root, `cache-${r}`);
      await settle();
      const cpu = process.cpuUsage();
      const [fsecs, got] = await timed(() =>
        fetchSources(sources, { cache, jobs: 4, signal: new AbortController().signal }),
      );
      const used = process.cpuUsage(cpu);
      fetchWall.push(fsecs);
      loads.push(os.loadavg()[0]);
      fetchCpus.push((used.user + used.system) / 1e6);
      if (got.some((g) => g.how !== 'fetched')) throw new Error('bench: not every file was fetched');
      await fs.rm(cache, { recursive: true, force: true });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const mib = total / (1024 * 1024);
    const fetchSecs = median(fetchWall);
    const curlSecs = median(curlWall);
    const curlHashCpu = median(curlCpus.map((c, i) => c + hashCpus[i]));
    const curlSyncSecs = median(curlSyncWall);
    const load = `load ${median(loads).toFixed(1)}`;
    return [
      {
        figure: `fetch ${n} files, ${mib.toFixed(0)} MiB from a local server, vs curl (seconds, median of ${rounds}, ${load})`,
        sifkit: fetchSecs,
        baseline: curlSecs,
        unit: 's',
        target: 'ratio <= 1.5 (bandwidth-bound; fetch also hashes and fsyncs every byte)',
        met: fetchSecs / curlSecs <= 1.5,
      },
      {
        figure: `the same, vs curl then sync -d of each file (durable, as the cache is; ${load})`,
        sifkit: fetchSecs,
        baseline: curlSyncSecs,
        unit: 's',
        target: 'ratio <= 1.5',
        met: fetchSecs / curlSyncSecs <= 1.5,
      },
      {
        figure: 'fetch throughput (MiB/s)',
        sifkit: mib / fetchSecs,
        baseline: mib / curlSecs,
        unit: 'MiB/s',
        target: 'informational',
        met: true,
      },
      {
        figure: 'fetch CPU seconds vs curl + sha256sum of the same files',
        sifkit: median(fetchCpus),
        baseline: curlHashCpu,
        unit: 's',
        target: 'ratio <= 1.5 (the same work: bytes in, digest)',
        met: median(fetchCpus) / curlHashCpu <= 1.5,
      },
    ];
  } finally {
    server.kill('SIGTERM');
    await fs.rm(root, { recursive: true, force: true });
  }
}
