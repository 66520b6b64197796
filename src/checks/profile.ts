/**
 * How a recipe's checks are launched, per runner, from the recipe's
 * `testing:` section; command-line flags override. Placeholders in braces
 * are filled per check. Pure.
 */
import { bashWord, fillShell } from '../emit/bash';
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
  return {
    local: { ...d.local, ...t.local },
    slurm: { ...d.slurm, ...t.slurm },
  };
}

/** The recipe's Slurm profile with what the command line gave (--partition, --srun...); an override left unset keeps the recipe's. */
export function slurmWithOverrides(profile: SlurmProfile, overrides: Partial<SlurmProfile> = {}): SlurmProfile {
  return { ...profile, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}

/** The script a check runs inside the container: its env, the conda env, the command. */
export function checkScript(
  check: { env: Record<string, string>; unset?: string[]; command: string; ranks: number; timeoutSeconds: number },
  launcher: string,
): string {
  const lines = [
    '#!/bin/sh',
    '# written by sifkit test',
    ...(check.unset ?? []).map((k) => `unset ${k}`),
    ...Object.entries(check.env).map(([k, v]) => `export ${k}=${bashWord(v, `env ${k}`)}`),
    'if [ -n "$WITH_CONDA" ]; then eval "$WITH_CONDA"; fi',
  ];
  const launch = check.ranks > 1 && launcher ? `${fillShell(launcher, { ranks: check.ranks }, 'the launcher')} ` : '';
  // The time limit is also enforced inside the container: killing a
  // container's client (srun, docker run) does not always stop what runs in it.
  // Not exec'ed: in a container this shell is PID 1, and busybox's timeout
  // runs the command in its own process, which would then ignore the KILL.
  lines.push(
    `if command -v timeout >/dev/null 2>&1; then timeout -s KILL ${check.timeoutSeconds} ${launch}${check.command}; exit $?; fi`,
  );
  lines.push(`exec ${launch}${check.command}`);
  return lines.join('\n') + '\n';
}
