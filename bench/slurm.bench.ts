/**
 * The release's stages timed here on the example (mpi4py-cpu), one
 * variant, as a user runs them, then projected (projection.ts) to N
 * variants on K nodes, local vs --on slurm. The build is a real one
 * (--rebuild: no layer cache) unless SIFKIT_BENCH_REBUILD=0.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { buildBoundFrom, project, type StageTimes } from './projection';
import { timed, type Figure } from './table';

const exec = promisify(execFile);
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

async function sifkit(args: string[], cwd: string): Promise<string> {
  const { stdout } = await exec(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...process.env, CI: '1' },
    maxBuffer: 64 * 1048576,
  });
  return stdout;
}

/** From sbatch to a finished one-second job, polling accounting every 0.2 s. */
async function queueSeconds(): Promise<number> {
  const [s] = await timed(async () => {
    const id = (await exec('sbatch', ['--parsable', '--wrap', 'true', '-o', '/dev/null'])).stdout.trim();
    for (;;) {
      const { stdout } = await exec('sacct', ['-n', '-P', '-X', '-j', id, '-o', 'State']);
      if (/COMPLETED|FAILED|CANCELLED/.test(stdout)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  return s;
}

function hms(s: number): string {
  if (s < 60) return `${s.toFixed(0)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function printProjection(title: string, t: StageTimes): void {
  console.log(
    `\n${title}: per variant build ${hms(t.build)}, archive ${hms(t.archive)}, convert ${hms(t.convert)}, test ${hms(t.test)}, stage+promote ${hms(t.publish)}, queue ${hms(t.queue)}`,
  );
  const head = ['variants', 'engines', 'local', 'slurm K=1', 'K=4', 'K=16', 'build share (K=16)'];
  const rows = [1, 4].flatMap((e) =>
    [1, 4, 10, 20].map((n) => [
      String(n),
      String(e),
      hms(project(t, n, 1, e).local),
      ...[1, 4, 16].map((k) => hms(project(t, n, k, e).slurm)),
      `${(project(t, n, 16, e).buildShare * 100).toFixed(0)}%`,
    ]),
  );
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '));
  for (const e of [1, 4]) {
    const from = [1, 4, 16].map((k) => `K=${k}: ${buildBoundFrom(t, k, e) ?? 'never'}`).join(', ');
    console.log(`builds on ${e} engine(s) outlast the jobs from this many variants: ${from}`);
  }
}

export async function slurmBenches(): Promise<Figure[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-bench-slurm-'));
  try {
    const rebuild = process.env.SIFKIT_BENCH_REBUILD !== '0';
    const [build, out] = await timed(() =>
      sifkit(['build', 'mpi4py-cpu', ...(rebuild ? ['--rebuild'] : []), '--json'], dir),
    );
    const image = (JSON.parse(out) as { images: Array<{ imageId: string; dockerhash: string; tag: string }> })
      .images[0];
    const stem = image.tag.replace(/^.*\//, '').replace(':', '-');
    const tar = path.join(dir, 'image.tar');
    const [archive] = await timed(() => exec('docker', ['save', '-o', tar, image.imageId]));
    // The conventional name: stage and promote find the test results under it.
    const sif = path.join(dir, `${stem}-dockerhash-${image.dockerhash}.sif`);
    const [convert] = await timed(() =>
      sifkit(['convert', `docker-archive:${tar}`, '-o', sif, '--processors', String(os.cpus().length)], dir),
    );
    const queue = await queueSeconds();
    const [test] = await timed(() => sifkit(['test', sif, '--runner', 'slurm', '--recipe', 'mpi4py-cpu'], dir));
    const [publish] = await timed(async () => {
      await fs.mkdir(path.join(dir, 'tree'));
      await sifkit(['stage', sif, '--archive', tar, '--root', 'tree'], dir);
      return sifkit(['promote', path.basename(sif), '--to', 'all', '--root', 'tree'], dir);
    });
    const t: StageTimes = { build, archive, convert, test: Math.max(0, test - queue), publish, queue };
    printProjection(
      `measured here (${stem}, ${os.cpus().length} cores, build ${rebuild ? 'without' : 'with'} layer cache)`,
      t,
    );
    // The LUMI figures: an hour of build, ten minutes of conversion, a few of GPU tests; tens of GB saved.
    printProjection('LUMI, assumed from the issue (not measured)', {
      build: 3600,
      archive: 300,
      convert: 600,
      test: 300,
      publish: 120,
      queue: 60,
    });
    const row = (figure: string, s: number): Figure => ({
      figure: `slurm: ${figure}`,
      sifkit: s,
      unit: 's',
      target: 'measured',
      met: true,
    });
    return [
      row('build (one variant)', build),
      row('docker save', archive),
      row('convert from archive', convert),
      row('queue (sbatch to done, empty job)', queue),
      row('test job (less queue)', t.test),
      row('stage + promote', publish),
    ];
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
