/**
 * One meaning per word: every pipeline stage takes the flags its own
 * command takes (run takes every stage's, release those of its stages),
 * with the same help, and none of them hides the pipeline file's `with:`
 * behind a default.
 */
import type { Command, Option } from 'commander';
import { buildProgram } from '../../src/cli/program';
import { STAGE_FLAGS, convertSettings, graceDays, testSettings, type FlaggedStage } from '../../src/cli/stage-flags';
import { convertArgs } from '../../src/pipeline/slurm-executor';
import { convertArrayScript } from '../../src/pipeline/slurm-plan';

const program = buildProgram();
const command = (name: string): Command => {
  const c = program.commands.find((x) => x.name() === name);
  if (!c) throw new Error(`no command ${name}`);
  return c;
};
const longFlags = (c: Command): string[] => c.options.map((o: Option) => o.long!).filter(Boolean);
const option = (c: Command, flag: string): Option | undefined => c.options.find((o: Option) => o.long === flag);

/** Flags of a stage's command that a pipeline gives in its own way, each with why. */
const OWN_WAY: Record<string, string> = {
  '--json': 'every command has it',
  '--root': 'run and release have their own --root',
  '--output': 'the pipeline names each SIF <stem>-dockerhash-<hash>.sif under --out',
  '--out-dir': 'run and release write SIFs under --out',
  '--deterministic': 'a no-op kept for old scripts',
  '--recipe': "run's --recipe is the recipe, whose checks the test stage runs",
  '--archive': 'the pipeline stages the archive its archive stage saved',
  '--results': 'the pipeline records the runs in --results-dir',
  '--set': 'build and run share it (not a stage flag)',
  '--matrix': 'build and run share it (not a stage flag)',
  '--jobs': 'build and run share it (not a stage flag)',
};

const STAGE_COMMANDS: Record<FlaggedStage, string> = {
  build: 'build',
  convert: 'convert',
  test: 'test',
  stage: 'stage',
  promote: 'promote',
  retire: 'retire',
};

describe.each(['run', 'release'] as const)('sifkit %s', (pipelineCommand) => {
  const pc = command(pipelineCommand);
  const stages = (Object.keys(STAGE_COMMANDS) as FlaggedStage[]).filter(
    (s) => pipelineCommand === 'run' || s !== 'retire',
  );

  it.each(stages)("takes every flag of the %s command's own", (stage) => {
    const missing = longFlags(command(STAGE_COMMANDS[stage])).filter((f) => !OWN_WAY[f] && !longFlags(pc).includes(f));
    expect(missing).toEqual([]);
  });

  it('declares each stage flag with its stage named and no default of its own', () => {
    for (const stage of stages)
      for (const f of STAGE_FLAGS[stage]) {
        const o = option(pc, f.flags.split(' ')[0]);
        expect(o).toBeDefined();
        expect(o!.description.startsWith(`${stage}: `)).toBe(true);
        // --no-gate's negation gives gate: true unless given, as in `sifkit test`.
        if (!f.flags.startsWith('--no-')) expect(o!.defaultValue).toBeUndefined();
      }
  });
});

it('gives the stage commands the same help as the pipelines, with their defaults', () => {
  expect(option(command('convert'), '--compression')!.defaultValue).toBe('gzip');
  expect(option(command('test'), '--runner')!.defaultValue).toBe('local');
  expect(option(command('run'), '--compression')!.description).toBe(
    `convert: ${option(command('convert'), '--compression')!.description} (default: gzip)`,
  );
});

describe('the stage flags are checked once, for the command and the pipelines', () => {
  it.each([
    [{ compression: 'bzip9' }, /bzip9/],
    [{ mksquashfsMem: 'lots' }, /lots/],
    [{ processors: '0' }, /--processors 0/],
    [{ backend: 'apptainer', compression: 'zstd' }, /--compression is for the native backend/],
  ])('convert %j', (flags, message) => {
    expect(() => convertSettings(flags)).toThrow(message);
  });

  it.each([
    [{ runner: 'pbs' }, /--runner "pbs"/],
    [{ tolerance: '-1' }, /--tolerance -1/],
    [{ tolerance: 'lots' }, /--tolerance lots/],
  ])('test %j', (flags, message) => {
    expect(() => testSettings(flags)).toThrow(message);
  });

  it('reads good values', () => {
    expect(convertSettings({ compression: 'zstd', mksquashfsMem: '2G', processors: '4', fixPerms: true })).toEqual({
      backend: 'native',
      compression: 'zstd',
      mem: '2G',
      processors: 4,
      fixPerms: true,
    });
    expect(testSettings({ check: ['mpi4py'], gate: false, partition: 'small-g' })).toMatchObject({
      runner: 'local',
      only: ['mpi4py'],
      gate: false,
      tolerance: 0.1,
      slurm: { partition: 'small-g' },
    });
    expect(graceDays(undefined)).toBeUndefined();
    expect(graceDays('0')).toBe(0);
    expect(() => graceDays('1.5')).toThrow(/--grace-days 1.5/);
  });
});

describe("under --on slurm the conversion tasks take the run's convert flags", () => {
  it('maps the flags, leaving defaults and --processors out', () => {
    expect(convertArgs(undefined)).toEqual([]);
    expect(convertArgs({ backend: 'native', compression: 'gzip', processors: 8 })).toEqual([]);
    expect(convertArgs({ compression: 'zstd', mem: '2G', fixPerms: true })).toEqual([
      '--compression',
      'zstd',
      '--mksquashfs-mem',
      '2G',
      '--fix-perms',
    ]);
  });

  it("puts them on every task's command line, quoted", () => {
    const script = convertArrayScript({
      name: 'sifkit-convert-x',
      tasks: [{ archive: '/s/a.tar', sif: '/s/a.sif' }],
      resources: { time: '60', cpus: 2, sbatch: [] },
      logPattern: '/s/logs/c-%a.out',
      sifkit: ['/usr/bin/node', '/opt/sifkit/main.js'],
      convertArgs: ['--compression', 'zstd', '--fix-perms'],
    });
    expect(script).toMatch(/--processors "\$\{SLURM_CPUS_PER_TASK:-1\}" '--compression' 'zstd' '--fix-perms'\n$/);
  });
});
