/** The sifkit program: every command registered on one commander tree. */
import { Command, CommanderError } from 'commander';
import { registerBuild } from './build';
import { registerConvert } from './convert';
import { registerRetire, registerTree } from './tree';
import { registerTest } from './test';
import { registerEasyBuildFiles, registerPublish } from './publish';
import { registerJobs } from './jobs';
import { registerRelease } from './release';
import { registerRender } from './render';
import { registerFetch } from './fetch';
import { registerSign } from './sign';
import { registerStatus } from './status';
import { registerCompletion } from './completion';
import { registerCompat } from './compat';
import { addExamples, registerHelp } from './help';
import { errorLine, reportError } from './run';
import { failClosedStdout, guardOutput } from './stdio';
import { commandPath, refuseRepeatedFlags, usageLine, wantsJson } from './usage';
import { InputError, sifkitVersion } from '../index';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('sifkit')
    .description(
      'Take an HPC container from definition to retirement: render, build, convert to SIF, test, promote, retire.',
    )
    .version(sifkitVersion())
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // Told by the exit override below, as every other error is told.
      outputError: () => undefined,
    })
    // Bad usage is reported as every other error (reportError), and exits 2 as every other bad input does.
    .exitOverride((err) => {
      // --help and --version: no process.exit here, which would end before the write's error
      // (a full disk) arrives; runProgram lets the process end once stdout is written.
      if (err.exitCode === 0) throw err;
      const args = process.argv.slice(2);
      reportError(usageLine(err, commandPath(program, args)), wantsJson(args), stdio);
      process.exit(2);
    })
    .hook('preAction', (_program, command) => refuseEmptyOptions(command));
  registerRender(program);
  registerBuild(program);
  registerFetch(program);
  registerConvert(program);
  registerSign(program);
  registerTree(program);
  registerStatus(program);
  registerRetire(program);
  registerTest(program);
  registerEasyBuildFiles(program);
  registerPublish(program);
  registerRelease(program);
  registerJobs(program);
  registerCompat(program);
  registerCompletion(program);
  registerHelp(program);
  addExamples(program);
  refuseRepeatedFlags(program);
  return program;
}

const stdio = { stdout: (t: string) => process.stdout.write(t), stderr: (t: string) => process.stderr.write(t) };

/** Options where an empty value says something: `--launcher ''` runs the ranks without a launcher. */
const EMPTY_ALLOWED = new Set(['launcher']);

/**
 * An option given an empty value on the command line is refused, before
 * any command runs: read as "not given" or as 0 it would act on a default
 * the user did not ask for (`--root ''` on the default tree, `--grace-days ''`
 * purging at 0 days).
 */
function refuseEmptyOptions(command: Command): void {
  for (const option of command.options) {
    const key = option.attributeName();
    if (EMPTY_ALLOWED.has(key) || command.getOptionValueSource(key) !== 'cli') continue;
    const value: unknown = command.getOptionValue(key);
    if (value === '' || (Array.isArray(value) && value.includes('')))
      throw new InputError('empty-option', `${option.long ?? option.flags} was given an empty value`);
  }
}

/** Runs sifkit's command line (every command but the TAB's question, which main.ts answers). */
export function runProgram(argv: string[]): void {
  failClosedStdout();
  guardOutput();
  buildProgram()
    .parseAsync(argv)
    .catch((e) => {
      if (e instanceof CommanderError && e.exitCode === 0) return;
      // Commands report their own errors (runCommand); this is what escapes before one runs (a refused flag).
      const line = errorLine(e);
      reportError(line, wantsJson(argv.slice(2)), stdio);
      process.exit(line.exitCode);
    });
}
