import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { batchScript } from '../../src/checks/slurm';
import { parseSacct, parseSqueue } from '../../src/slurm/answers';
import { InputError } from '../../src/errors';
import { loadRecipe } from '../../src/recipe/load';
import type { PipelineContext } from '../../src/pipeline/context';
import { parsePipeline, type StageCatalog } from '../../src/pipeline/definition';
import { testJob } from '../../src/pipeline/slurm-executor';
import {
  convertArrayScript,
  nextStep,
  parseSlurmSettings,
  phase,
  splitForSlurm,
  type VariantJobs,
} from '../../src/pipeline/slurm-plan';

/** Stages known by name only: nothing needed, nothing given. */
const stageNames = (...names: string[]): StageCatalog => Object.fromEntries(names.map((n) => [n, {}]));

/**
 * The job scripts --on slurm writes, against golden files reviewed by
 * hand. UPDATE_GOLDEN=1 rewrites them after a deliberate change.
 */
async function golden(name: string, text: string): Promise<void> {
  const file = path.join(__dirname, '..', 'golden', name);
  if (process.env.UPDATE_GOLDEN) await fs.writeFile(file, text);
  expect(text).toBe(await fs.readFile(file, 'utf8'));
}

const OUT = '/scratch/project_462000008/sif';
const STEM = 'lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py';

describe('job scripts (golden)', () => {
  it('the conversion array: one task per variant, resources from the pipeline, mksquashfs given the task CPUs', async () => {
    const settings = parseSlurmSettings(
      {
        convert: {
          partition: 'small',
          account: 'project_462000008',
          time: '30',
          cpus: 8,
          mem: '16G',
          sbatch: ['--qos=normal'],
        },
      },
      'release.yaml',
      ['--mail-type=FAIL'],
    );
    const script = convertArrayScript({
      name: 'sifkit-convert-mpi4py-cpu',
      tasks: ['4c86d2919233', '0123456789ab'].map((h) => ({
        archive: `${OUT}/${STEM}-dockerhash-${h}.tar`,
        sif: `${OUT}/${STEM}-dockerhash-${h}.sif`,
      })),
      resources: settings.convert,
      logPattern: `${OUT}/.sifkit-slurm/logs/convert-1-%a.out`,
      sifkit: ['/usr/bin/node', "/opt/sifkit's/dist/src/cli/main.js"],
    });
    await golden('slurm-convert-array.sh', script);
  });

  it('the test job: the recipe checks, its partition replaced and the pipeline test options added', async () => {
    const recipe = await loadRecipe('mpi4py-cpu');
    const ctx = { recipe } as PipelineContext;
    const settings = parseSlurmSettings(
      { test: { partition: 'debug', account: 'project_462000008', time: '00:20:00' } },
      'release.yaml',
    );
    const r: VariantJobs = {
      stem: STEM,
      sif: `${OUT}/${STEM}-dockerhash-4c86d2919233.sif`,
      archive: `${OUT}/${STEM}-dockerhash-4c86d2919233.tar`,
      dockerhash: '4c86d2919233',
      imageId: 'sha256:4c86d2919233',
      tag: 'lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4-conda-mpi4py',
    };
    const job = testJob(ctx, r, `${OUT}/.sifkit-slurm/test-${STEM}-4c86d2919233-1`, {
      settings,
      resume: false,
      pollMs: 1000,
      sifkit: [],
      outDir: OUT,
      resultsDir: '/r',
    });
    await golden('slurm-test-job.sh', batchScript(job));
  });
});

describe('Slurm settings', () => {
  it('defaults: 2 CPUs and an hour for a conversion, the site defaults for the rest', () => {
    expect(parseSlurmSettings(undefined, 'p')).toEqual({
      convert: { time: '60', cpus: 2, sbatch: [] },
      test: { sbatch: [] },
    });
  });

  it.each([
    [{ convert: { cpus: 0 } }, 'slurm.convert.cpus: expected a number >= 1, found the number 0'],
    [{ convert: { time: 'soon' } }, 'slurm.convert.time: expected minutes or [D-]HH:MM:SS, found the string "soon"'],
    [{ convert: { mem: '4 G' } }, 'slurm.convert.mem: expected a size such as 4G, found the string "4 G"'],
    [{ convert: { partition: 'a;b' } }, 'slurm.convert.partition: expected a Slurm name'],
    [{ test: { sbatch: ['--qos=x; rm -rf /'] } }, 'slurm.test.sbatch[0]: expected one --long[=value] sbatch option'],
    [
      { test: { sbatch: ['--qos=x\n#SBATCH --uid=0'] } },
      'slurm.test.sbatch[0]: expected one --long[=value] sbatch option',
    ],
    [{ build: {} }, 'slurm: unknown key "build"'],
    [{ convert: { gpus: 1 } }, 'slurm.convert: unknown key "gpus"'],
  ])('refuses %j', (raw, message) => {
    expect(() => parseSlurmSettings(raw, 'release.yaml')).toThrow(InputError);
    expect(() => parseSlurmSettings(raw, 'release.yaml')).toThrow(message);
  });

  it('never lets a value end a #SBATCH line or reach the shell (random strings)', () => {
    const seed = Number(process.env.FC_SEED ?? 20261201);
    fc.assert(
      fc.property(fc.string(), (s) => {
        let script: string;
        try {
          const settings = parseSlurmSettings(
            { convert: { partition: s, account: s, time: s, mem: s, sbatch: [s] } },
            'p',
          );
          script = convertArrayScript({
            name: 'n',
            tasks: [{ archive: '/a.tar', sif: '/a.sif' }],
            resources: settings.convert,
            logPattern: '/l-%a',
            sifkit: ['node', 'main.js'],
          });
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
          return;
        }
        // Accepted: every line is still one directive or the fixed body.
        expect(
          script
            .split('\n')
            .filter((l) => l.startsWith('#SBATCH'))
            .every((l) => !/[;&|`$<>\\]/.test(l)),
        ).toBe(true);
      }),
      { seed, numRuns: 300 },
    );
  });

  it('the pipeline file names the executor and the resources', () => {
    const def = parsePipeline(
      'name: r\nexecutor: slurm\nslurm:\n  convert: { cpus: "4" }\nstages: [render, build, convert, test, stage]\n',
      'r.yaml',
      stageNames('render', 'build', 'archive', 'convert', 'test', 'stage'),
    );
    expect(def.executor).toBe('slurm');
    expect(parseSlurmSettings(def.slurm, 'r.yaml').convert.cpus).toBe(4);
    expect(splitForSlurm(def)).toEqual({
      before: [
        { stage: 'render', with: {} },
        { stage: 'build', with: {} },
        { stage: 'archive', with: {} },
      ],
      after: [{ stage: 'stage', with: {} }],
    });
    expect(() => parsePipeline('name: r\nexecutor: cloud\nstages: [render]\n', 'r.yaml', stageNames('render'))).toThrow(
      /executor: expected one of "local", "slurm", found the string "cloud"/,
    );
    expect(() =>
      splitForSlurm(parsePipeline('name: r\nstages: [render, test]\n', 'r.yaml', stageNames('render', 'test'))),
    ).toThrow(/needs a convert stage followed by a test stage/);
  });
});

describe('job records', () => {
  const base: VariantJobs = { stem: 's', sif: '/s.sif', archive: '/s.tar', dockerhash: 'h', imageId: 'i', tag: 't' };
  const job = (id: string, state: string) => ({ id, state, log: `/log-${id}`, attempt: 1, workdir: '/w' });

  it('decides what a new controller submits: nothing that runs or passed, a failed job alone', () => {
    expect(nextStep(base)).toBe('convert');
    expect(nextStep({ ...base, convert: job('1_0', 'RUNNING'), test: job('2', 'PENDING') })).toBe('follow');
    expect(nextStep({ ...base, convert: job('1_0', 'FAILED'), test: job('2', 'CANCELLED') })).toBe('convert');
    expect(nextStep({ ...base, convert: job('1_0', 'COMPLETED'), test: job('2', 'FAILED') })).toBe('test');
    expect(nextStep({ ...base, convert: job('1_0', 'COMPLETED'), test: job('2', 'COMPLETED') })).toBe('follow');
    expect(nextStep({ ...base, convert: job('1_0', 'COMPLETED') })).toBe('test');
    expect(phase({ ...base, convert: job('1_0', 'RUNNING') })).toBe('convert running (job 1_0)');
    expect(phase({ ...base, convert: job('1_0', 'PENDING') })).toBe('convert queued (job 1_0)');
    expect(phase({ ...base, convert: job('1_0', 'COMPLETED'), test: job('2', 'PENDING') })).toBe(
      'convert done, test queued (job 2)',
    );
  });

  it('reads sacct and squeue as they print', () => {
    const acct = parseSacct('7_0|COMPLETED|0:0\n7_1|FAILED|1:0\n7_[2-3]|PENDING|0:0\n8|CANCELLED by 0|0:15\n\n');
    expect([...acct]).toEqual([
      ['7_0', { state: 'COMPLETED', exitCode: '0:0' }],
      ['7_1', { state: 'FAILED', exitCode: '1:0' }],
      ['8', { state: 'CANCELLED', exitCode: '0:15' }],
    ]);
    expect([...parseSqueue('7_0|RUNNING\n7_[1]|PENDING\n9|PENDING\n')]).toEqual([
      ['7_0', 'RUNNING'],
      ['9', 'PENDING'],
    ]);
  });
});
