/**
 * The one way a value enters an `#SBATCH` line. sbatch reads these lines
 * itself (not bash): one option per line, split at white space, quotes of
 * its own. So an option is refused unless it is `--name` or `--name=value`
 * with a value of plain characters: no white space, quote, backslash,
 * `#`, `$`, backtick, `;` or control character. A partition is a plain
 * name. Paths never go here (a job script writes its output itself).
 * Pure.
 */
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';

const OPTION = /^--?[A-Za-z][A-Za-z0-9-]*(=[A-Za-z0-9_.,:/@%+=*-]*)?$/;
const PARTITION = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const JOB_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/;

/** An sbatch option as given (recipe, pipeline file, command line), checked. */
export function sbatchOption(option: string, what = 'sbatch option'): string {
  if (!OPTION.test(option))
    throw new InputError(
      'bad-sbatch',
      `${what} ${escapeForMessage(option)} is not --name or --name=value of plain characters (letters, digits, _ . , : / @ % + = * -)`,
    );
  return option;
}

/** A Slurm partition's name, checked. */
export function slurmPartition(name: string, what = 'partition'): string {
  if (!PARTITION.test(name))
    throw new InputError(
      'bad-partition',
      `${what} ${escapeForMessage(name)} is not a partition name (letters, digits, _ . -)`,
    );
  return name;
}

/** A job's name, checked. */
export function slurmJobName(name: string, what = 'job name'): string {
  if (!JOB_NAME.test(name))
    throw new InputError(
      'bad-sbatch',
      `${what} ${escapeForMessage(name)} is not a plain name (letters, digits, _ . + -)`,
    );
  return name;
}

/** `#SBATCH OPTION` for a checked option. */
export function sbatchLine(option: string, what?: string): string {
  return `#SBATCH ${sbatchOption(option, what)}`;
}
