/**
 * What Slurm's commands answer, as sifkit asks them: `sbatch --parsable`,
 * `squeue -h -o %i|%T`, `sacct -n -P -X -o JobID,State,ExitCode` and
 * `scontrol show job -o`. Their lines are split into named fields
 * (slurm/answers.ts) and checked here: an answer is data until it fits,
 * and one that does not is a failure naming the field, never a job state
 * made up from it. States are checked by form, not by a list: Slurm adds
 * states, and a state sifkit does not know is "not ended".
 */
import { z } from 'zod';

/** A job, or one task of an array job: `123`, `123_4`. */
export const slurmJobId = z.string().regex(/^\d+(_\d+)?$/, 'a Slurm job id (123 or 123_4)');

/** An array's tasks not started yet, in one line: `123_[0-2]`, `123_[4,7%2]`. */
export const pendingArrayId = /^\d+_\[[0-9,%-]+\]$/;

/** A state as squeue and scontrol print it: `RUNNING`, `OUT_OF_MEMORY`. */
const state = z.string().regex(/^[A-Z][A-Z_]*$/, 'a Slurm job state (RUNNING, COMPLETED, ...)');

/** `exit:signal`, as sacct and scontrol print it. */
const exitCode = z.string().regex(/^\d+:\d+$/, 'an exit code (exit:signal, 0:0)');

/** `sbatch --parsable`: the id, and `;cluster` on a federation. */
export const sbatchAnswer = z.object({
  jobId: z.string().regex(/^\d+$/, 'a job id'),
  cluster: z.string().regex(/^\S+$/, 'a cluster name').optional(),
});

/** One line of `squeue -h -r -o %i|%T`. */
export const squeueLine = z.object({ JobID: slurmJobId, State: state });

/** One line of `sacct -n -P -X -o JobID,State,ExitCode`; a state may say who: `CANCELLED by 1000`. */
export const sacctLine = z.object({
  JobID: slurmJobId,
  State: z.string().regex(/^[A-Z][A-Z_]*( by -?\d+)?$/, 'a Slurm job state (COMPLETED, CANCELLED by 1000, ...)'),
  ExitCode: exitCode,
});

/** The fields sifkit reads of one line of `scontrol show job -o`. */
export const scontrolJobLine = z.looseObject({
  JobId: z.string().regex(/^\d+$/, 'a job id'),
  JobState: state,
  ExitCode: exitCode.optional(),
});
