/**
 * `sifkit jobs`: the Slurm jobs a `release --on slurm` recorded beside its
 * SIFs, where they are now (from the queue and accounting), and
 * `--cancel` to stop them. Works from any host that sees the output
 * directory and the scheduler; the controller that submitted them may be
 * gone.
 */
import * as path from 'node:path';
import type { Command } from 'commander';
import { jsonDoc, table } from './output';
import { runCommand } from './run';
import {
  cancelAll,
  InputError,
  isDone,
  isEnded,
  type JobRecord,
  phase,
  readJobs,
  refresh,
  stateFileFor,
  writeJobs,
} from '../index';

function cell(j: JobRecord | undefined): string {
  if (!j) return '-';
  return `${j.id} ${j.state}${j.exitCode && j.exitCode !== '0:0' ? ` (exit ${j.exitCode})` : ''}${j.attempt > 1 ? ` try ${j.attempt}` : ''}`;
}

/** The log worth reading: the failed job's, else the running one's. */
function logOf(...jobs: Array<JobRecord | undefined>): string {
  const failed = jobs.find((j) => j && isEnded(j.state) && !isDone(j.state));
  return failed?.log ?? jobs.find((j) => j && !isEnded(j.state))?.log ?? '-';
}

export function registerJobs(program: Command): void {
  program
    .command('jobs')
    .description('the Slurm jobs of a release --on slurm: queued, running, done or failed per variant')
    .option('--out <dir>', 'the SIF directory the release wrote to', '.sifkit/sif')
    .option('--cancel', 'cancel every job not yet ended (scancel)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (flags: { out?: string; cancel?: boolean; json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const file = stateFileFor(path.resolve(flags.out ?? '.sifkit/sif'));
        const jobs = await readJobs(file);
        if (!jobs)
          throw new InputError('no-jobs', `no Slurm jobs recorded in ${file}`, {
            hint: 'give the --out of the release --on slurm',
          });
        if (await refresh(jobs, io.signal)) await writeJobs(file, jobs);
        const cancelled = flags.cancel ? await cancelAll(jobs) : [];
        if (cancelled.length) await writeJobs(file, jobs);
        // Recorded as each archive appeared, which varies from run to run: shown by name.
        const variants = [...jobs.variants].sort((a, b) => a.stem.localeCompare(b.stem) || a.sif.localeCompare(b.sif));
        if (io.json) {
          io.stdout(
            jsonDoc({
              ok: true,
              file,
              recipe: jobs.recipe,
              cancelled,
              variants: variants.map((v) => ({ ...v, phase: phase(v) })),
            }),
          );
          return;
        }
        io.stdout(
          table(
            variants.map((v) => [v.stem, v.dockerhash, cell(v.convert), cell(v.test), logOf(v.convert, v.test)]),
            ['variant', 'dockerhash', 'convert', 'test', 'log'],
          ),
        );
        if (cancelled.length) io.stdout(`cancelled: ${cancelled.join(' ')}\n`);
      }, flags);
    });
}
