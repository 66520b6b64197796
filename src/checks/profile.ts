/** The launch profile's per-run parts: overrides from the command line and each check's script. Pure. */
import { bashWord, fillShell } from '../emit/bash';
import type { SlurmProfile } from '../recipe/testing';

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
