/**
 * `release --on slurm` runs the host compatibility check before its tests,
 * as a local release does: against the hosts the tree records, on the
 * image its jobs would convert and test, before any job is submitted. A
 * Debian bullseye image (glibc 2.31) is refused for a host whose bound
 * Open MPI (trixie's) needs a newer glibc, with no job submitted; against
 * a host it works on, it is converted and tested by the real Slurm here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { HOST_LIB_DIR, debianImage, hostLibraries, imageRef } from '../support/debian-images';
import { removeTestImages, runId, TEST_LABEL, TEST_TESTING } from '../support/engine';

jest.setTimeout(1_800_000);

const RECIPE = 'compatslurm';

/** How many conversion jobs of this recipe the scheduler's accounting knows (this test's runs share the name). */
function convertJobs(): number {
  const names = execFileSync('sacct', ['-n', '-X', '-P', '-a', '--starttime', 'now-1days', '--format', 'JobName'], {
    encoding: 'utf8',
  });
  return names.split('\n').filter((n) => n === `sifkit-convert-${RECIPE}`).length;
}

async function cli(args: string[], code: number, cwd: string): Promise<string> {
  const r = await runCli(args, { cwd });
  if (r.code !== code) throw new Error(`sifkit ${args.join(' ')}: exit ${r.code}, expected ${code}\n${r.stderr}`);
  return r.stdout;
}

describe('release --on slurm checks host compatibility before its jobs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h45-compat-slurm-'));
    await debianImage('bullseye');
    await debianImage('trixie');
    const defs = path.join(dir, 'defs', RECIPE);
    await fs.mkdir(defs, { recursive: true });
    await fs.writeFile(
      path.join(defs, 'main.docker'),
      `FROM ${imageRef('bullseye')}\nLABEL ${TEST_LABEL}="${runId}"\nRUN echo "{{ v }}" > /etc/compat-version\n`,
    );
    await fs.writeFile(
      path.join(defs, 'recipe.yaml'),
      `name: ${RECIPE}
naming: { prefix: sifkittest, app: ${RECIPE}, version: v, parts: [[v, v]] }
fragments: [${RECIPE}/main.docker]
parameters: { v: { type: version, default: '1.0' } }
checks:
  - { name: debian, command: 'cat /etc/debian_version', expect: '11.' }
${TEST_TESTING}`,
    );
    // Two hosts: trixie's Open MPI (needs glibc > 2.31) and bullseye's own, bound where the image's LD_LIBRARY_PATH looks.
    for (const r of ['trixie', 'bullseye'] as const) {
      const libs = path.join(dir, `host-${r}`);
      await hostLibraries(imageRef(r), ['libmpi.so.40'], libs);
      await cli(['host', 'snapshot', '--bind', `${libs}:${HOST_LIB_DIR}`, '-o', path.join(dir, `${r}.json`)], 0, dir);
    }
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const release = (root: string) => [
    'release',
    path.join(dir, 'defs', RECIPE),
    '--on',
    'slurm',
    '--poll',
    '1',
    '--root',
    root,
    '--out',
    `sif-${root}`,
    '--results-dir',
    `results-${root}`,
    '--log-dir',
    'logs',
    // The check is on the image before any job; nothing reads the SIF's squashfs, and lz4 squashes bullseye's
    // 350 MB in a tenth of gzip's CPU time.
    '--compression',
    'lz4',
  ];

  it('refuses, in one line and exit 3, an image that breaks on a recorded host, before submitting a job', async () => {
    await cli(['init', 'breaks'], 0, dir);
    await cli(['host', 'record', path.join(dir, 'trixie.json'), '--name', 'trixie', '--root', 'breaks'], 0, dir);
    const before = convertJobs();
    const r = await runCli(release('breaks'), { cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /sifkittest-compatslurm-v-1\.0-dockerhash-[0-9a-f]{12}\.sif breaks on host trixie: \/opt\/cray\/lib\/\S+ needs GLIBC_2\.\d+ from libc\.so\.6/,
    );
    // No job: no record of one, and no new one in the scheduler's accounting under the recipe's job name.
    expect(existsSync(path.join(dir, 'sif-breaks', '.sifkit-slurm', 'jobs.json'))).toBe(false);
    expect(convertJobs()).toBe(before);
    expect(await fs.readdir(path.join(dir, 'breaks', 'sif-images'))).toEqual([]);
  });

  it('lets through, to real Slurm jobs, an image that works on every recorded host', async () => {
    await cli(['init', 'works'], 0, dir);
    await cli(['host', 'record', path.join(dir, 'bullseye.json'), '--name', 'bullseye', '--root', 'works'], 0, dir);
    const r = await runCli([...release('works'), '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const jobs = JSON.parse(await cli(['jobs', '--out', 'sif-works', '--json'], 0, dir)) as {
      variants: Array<{ convert?: { state: string }; test?: { state: string } }>;
    };
    expect(jobs.variants).toHaveLength(1);
    expect(jobs.variants[0].convert!.state).toBe('COMPLETED');
    expect(jobs.variants[0].test!.state).toBe('COMPLETED');
    expect(await fs.readdir(path.join(dir, 'works', 'sif-images'))).toEqual(['sifkittest-compatslurm-v-1.0.sif']);
  });
});
