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
import { isValidName, type NameKind } from '../names';

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

/** A job as the run's state file records it (jobs.json): its id, last state seen, log, and attempt. */
const recordedJob = z.strictObject({
  id: slurmJobId,
  state: z.string().regex(/^[A-Z][A-Z_]*( by -?\d+)?$/, 'a Slurm job state (PENDING, COMPLETED, ...)'),
  exitCode: exitCode.optional(),
  log: z.string().min(1),
  attempt: z.number().int().positive(),
});

/** A name the executor joins into a path (a script's, a job directory's): the one name rule. */
const named = (kind: NameKind) => z.string().refine((v) => isValidName(kind, v), { message: `a ${kind}` });
const absolute = z.string().refine((v) => v.startsWith('/'), { message: 'an absolute path' });

/**
 * The state file of an `--on slurm` run (pipeline/slurm-jobs.ts): read
 * back by a new controller, `release --resume` and `sifkit jobs`, so it is
 * data until it fits, like every file sifkit reads.
 */
export const runJobsSchema = z.strictObject({
  version: z.literal(1),
  recipe: named('recipe'),
  convertScript: absolute.optional(),
  variants: z.array(
    z.strictObject({
      stem: named('stem'),
      sif: absolute,
      archive: absolute,
      dockerhash: named('dockerhash'),
      imageId: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'an image ID (sha256:…)'),
      tag: named('tag'),
      convert: recordedJob.optional(),
      test: recordedJob.extend({ workdir: absolute }).optional(),
    }),
  ),
});
