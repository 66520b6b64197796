/**
 * How a recipe's checks are launched, per runner, from the recipe's
 * `testing:` section; command-line flags override. Placeholders in braces
 * are filled per check. Read once, when the recipe loads (recipe/schema.ts).
 * Pure.
 */
import { fillShell } from '../emit/bash';
import { sbatchOption, slurmPartition } from '../emit/sbatch';
import { parseDocument } from '../validate/schema';
import { testingSchema } from '../validate/schemas/config';

export interface LocalProfile {
  /** Launches the ranks inside the container when a check has more than one. */
  launcher: string;
}

export interface SlurmProfile {
  partition: string;
  /** Extra #SBATCH lines (LUMI: --exclusive, --mem=0, --threads-per-core=1, --gpus-per-node=8). */
  sbatch: string[];
  /** `{nodes}` `{ranks}` `{gpus}`: the job step. */
  srun: string;
  /** `{workdir}` `{sif}` `{image}`: the container around each rank (or around the launcher). */
  container: string;
  /** Inside the container, when the ranks are not srun's (e.g. mpiexec of the image's own MPI). */
  launcher: string;
  /**
   * Run after each step and when the job is cancelled: removes what a
   * killed step can leave running (a docker client's container outlives it).
   */
  cleanup: string;
}

export interface TestProfile {
  local: LocalProfile;
  slurm: SlurmProfile;
}

export const DEFAULT_PROFILE: TestProfile = {
  local: { launcher: 'mpiexec --allow-run-as-root --oversubscribe -n {ranks}' },
  // LUMI's way (reference §5): srun starts the ranks, each in singularity.
  slurm: {
    partition: 'standard-g',
    sbatch: ['--exclusive', '--mem=0', '--threads-per-core=1', '--gpus-per-node=8'],
    srun: 'srun -N {nodes} -n {ranks} --cpu-bind=mask_cpu:0xfe000000000000,0xfe00000000000000,0xfe0000,0xfe000000,0xfe,0xfe00,0xfe00000000,0xfe0000000000 --gpus {gpus}',
    container:
      'singularity exec -B /var/spool/slurmd -B /opt/cray -B /usr/lib64/libcxi.so.1 -B /usr/lib64/libjansson.so.4 -B {workdir}:/myrun {sif}',
    launcher: '',
    cleanup: '',
  },
};

/** A recipe's `testing:` section over LUMI's defaults (checked by validate/schemas/config.ts). */
export function parseProfile(raw: unknown, recipe: string): TestProfile {
  const t = parseDocument(testingSchema, raw ?? {}, `recipe ${recipe}: testing`, 'bad-testing');
  const d = DEFAULT_PROFILE;
  // Checked here too, so a bad recipe is refused when it is read, naming where.
  if (t.slurm?.partition !== undefined) slurmPartition(t.slurm.partition, `recipe ${recipe}: testing.slurm.partition`);
  for (const o of t.slurm?.sbatch ?? []) sbatchOption(o, `recipe ${recipe}: testing.slurm.sbatch`);
  const profile = {
    local: { ...d.local, ...t.local },
    slurm: { ...d.slurm, ...t.slurm },
  };
  // The operator's shell templates, filled once with stand-ins: a line break, a placeholder in quotes or an unknown one is refused at load.
  const job = { nodes: 1, ranks: 1, gpus: 0, workdir: '', sif: '', image: '' };
  const where = (k: string) => `recipe ${recipe}: testing.${k}`;
  fillShell(profile.local.launcher, { ranks: 1 }, where('local.launcher'));
  fillShell(profile.slurm.launcher, { ranks: 1 }, where('slurm.launcher'));
  fillShell(profile.slurm.srun, job, where('slurm.srun'));
  fillShell(profile.slurm.container, job, where('slurm.container'));
  fillShell(profile.slurm.cleanup, { workdir: '' }, where('slurm.cleanup'));
  return profile;
}
