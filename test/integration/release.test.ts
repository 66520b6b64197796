import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, runCli } from '../support/cli';
import { removeTestImages, writeTinyRecipe } from '../support/engine';
import { TEMP_MARKER } from '../../src/util/files';
import { startSecondEngine } from '../support/second-engine';
import { until } from '../support/poll';
import { inspectSif } from '../../src/sif/inspect';

jest.setTimeout(900_000);

const STEM = 'lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py';

describe('sifkit release: the example recipe end to end, interrupted and resumed', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-release-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const release = (extra: string[] = []) => [
    'release',
    'mpi4py-cpu',
    '--root',
    'containers',
    '--init',
    '--out',
    'sif',
    '--results-dir',
    'results',
    '--log-dir',
    'logs',
    // lz4: gzip costs about 150 s of CPU for the example's 800 MB, lz4 about 3 s; the run is interrupted and
    // resumed all the same. A default gzip SIF is converted and read in compat.test.ts.
    '--compression',
    'lz4',
    ...extra,
  ];

  it('stops cleanly on Ctrl-C during the conversion, then a rerun resumes and finishes', async () => {
    // First run: interrupted once the conversion has started.
    const child = spawn(process.execPath, [CLI, ...release()], { cwd: dir, env: { ...process.env, CI: '1' } });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (!sent && /mksquashfs -> /.test(stderr)) {
        sent = true;
        // Interrupted once mksquashfs writes the SIF's temporary file (polled), not after a guessed time.
        void (async () => {
          const sifDir = path.join(dir, 'sif');
          await until(
            async () =>
              child.exitCode !== null ||
              (await fs.readdir(sifDir).catch(() => [] as string[])).some(
                (f) => f.includes('.sif') && f.includes(TEMP_MARKER),
              ),
            50,
          );
          child.kill('SIGINT');
        })();
      }
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    // Nothing half-written under a final name.
    const sifs = await fs.readdir(path.join(dir, 'sif')).catch(() => [] as string[]);
    expect(sifs.filter((f) => f.endsWith('.sif'))).toEqual([]);
    expect(sifs.filter((f) => f.includes(TEMP_MARKER))).toEqual([]);
    // The archive is published after its SIF: none either, so the rerun reads the image again.
    expect(sifs.filter((f) => f.endsWith('.tar'))).toEqual([]);

    // Second run: build reused, the rest done.
    const second = await runCli([...release(), '--json'], { cwd: dir });
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const v = JSON.parse(second.stdout).variants[0];
    expect(v.stages.build).toMatch(/^skipped: reused/);
    expect(v.stages).toMatchObject({ archive: 'done', convert: 'done', test: 'done', stage: 'done', promote: 'done' });
    // Staged: the tree's copy is the SIF's one home, none is left in --out.
    const sif = path.join(dir, 'containers', 'tested-containers', `${STEM}-dockerhash-${v.dockerhash}.sif`);
    expect(v.sif).toBe(sif);
    expect(await fs.readdir(path.join(dir, 'sif'))).toEqual([]);
    expect(execFileSync('siftool', ['header', sif]).toString()).toMatch(/Primary Architecture:\s+amd64/);
    expect((await inspectSif(sif)).partition!.compression).toBe('lz4');
    expect(await fs.readlink(path.join(dir, 'containers', 'sif-images', `${STEM}.sif`))).toBe(
      `../easybuild-sif-images/${STEM}-dockerhash-${v.dockerhash}.sif`,
    );
    expect((await runCli(['verify', '--root', 'containers', '--deep'], { cwd: dir })).code).toBe(0);
    const ledger = JSON.parse(
      await fs.readFile(
        path.join(dir, 'containers', '.sifkit', 'ledger', `${STEM}-dockerhash-${v.dockerhash}.sif.json`),
        'utf8',
      ),
    );
    expect(ledger.tests[0]).toMatchObject({ passed: true, runner: 'local' });

    // Third run: everything is done and valid, so every stage skips.
    const third = await runCli([...release(), '--json'], { cwd: dir });
    expect(third.code).toBe(0);
    const stages = JSON.parse(third.stdout).variants[0].stages;
    for (const s of ['build', 'convert', 'test', 'stage', 'promote']) expect(stages[s]).toMatch(/^skipped/);
  });
});

describe('sifkit run release: a matrix of 3 variants with --jobs 2', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-matrix-'));
    await writeTinyRecipe(
      dir,
      "matrix:\n  - { v: '1.0' }\n  - { v: '1.1' }\n  - { v: '1.2' }\ntesting:\n  local: { launcher: '' }\n",
    );
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('releases all three, two at a time, into one tree', async () => {
    const r = await runCli(
      [
        'run',
        'release',
        '--recipe',
        path.join(dir, 'defs', 'tiny'),
        '--matrix',
        '--jobs',
        '2',
        '--convert-jobs',
        '2',
        '--root',
        'tree',
        '--init',
        '--out',
        'sif',
        '--results-dir',
        'results',
        '--log-dir',
        'logs',
        '--json',
      ],
      { cwd: dir },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.variants.map((v: { stem: string }) => v.stem)).toEqual([
      'sifkittest-tiny-v-1.0',
      'sifkittest-tiny-v-1.1',
      'sifkittest-tiny-v-1.2',
    ]);
    for (const v of doc.variants)
      expect(v.stages).toMatchObject({ build: 'done', convert: 'done', test: 'done', stage: 'done', promote: 'done' });
    expect((await fs.readdir(path.join(dir, 'tree', 'sif-images'))).sort()).toEqual([
      'sifkittest-tiny-v-1.0.sif',
      'sifkittest-tiny-v-1.1.sif',
      'sifkittest-tiny-v-1.2.sif',
    ]);
    const status = JSON.parse((await runCli(['status', '--root', 'tree', '--json'], { cwd: dir })).stdout);
    expect(status.images).toHaveLength(3);
    expect((await runCli(['verify', '--root', 'tree', '--deep'], { cwd: dir })).code).toBe(0);
  });

  it('spreads builds over two engines (--engines), each variant converted from its own', async () => {
    const engine2 = await startSecondEngine();
    try {
      const r = await runCli(
        [
          'run',
          'release',
          '--recipe',
          path.join(dir, 'defs', 'tiny'),
          '--matrix',
          '--jobs',
          '3',
          '--build-jobs',
          '2',
          '--engines',
          `unix:///var/run/docker.sock,${engine2.address}`,
          // The first engine holds these images from the tests above, and the plan would send every variant
          // to it (plan-from-cache.test.ts): --rebuild plans as on empty engines, which is what this test is about.
          '--rebuild',
          '--root',
          'tree3',
          '--init',
          '--out',
          'sif3',
          '--results-dir',
          'results3',
          '--log-dir',
          'logs',
          '--json',
        ],
        { cwd: dir },
      );
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.variants.map((v: { engine: string }) => v.engine)).toEqual([
        'unix:///var/run/docker.sock',
        engine2.address,
        'unix:///var/run/docker.sock',
      ]);
      const there = execFileSync('docker', [
        '-H',
        engine2.address,
        'images',
        '--format',
        '{{.Repository}}:{{.Tag}}',
      ]).toString();
      expect(there).toContain('sifkittest/sifkittest-tiny:v-1.1');
      expect(there).not.toContain('sifkittest/sifkittest-tiny:v-1.0');
      for (const v of doc.variants) expect(v.stages.promote).toBe('done');
    } finally {
      await engine2.stop();
    }
  });

  it('a failing variant stops at its failing stage; the others finish, and the exit is 1', async () => {
    const recipe = path.join(dir, 'defs', 'tiny', 'recipe.yaml');
    await fs.writeFile(recipe, (await fs.readFile(recipe, 'utf8')).replace("expect: 'tiny'", "expect: 'tiny 1.0'"));
    const r = await runCli(
      [
        'run',
        'release',
        '--recipe',
        path.join(dir, 'defs', 'tiny'),
        '--matrix',
        '--jobs',
        '3',
        '--root',
        'tree2',
        '--init',
        '--out',
        'sif2',
        '--results-dir',
        'results2',
        '--log-dir',
        'logs',
        '--json',
      ],
      { cwd: dir },
    );
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.variants[0].stages.promote).toBe('done');
    expect(doc.variants[1].stages.test).toMatch(/^FAILED: 1 check\(s\) failed: version \(output lacks "tiny 1.0"\)/);
    expect(doc.variants[1].stages.stage).toBe('not reached');
    expect(await fs.readdir(path.join(dir, 'tree2', 'sif-images'))).toEqual(['sifkittest-tiny-v-1.0.sif']);
  });
});
