/** The sifkit program: every command registered on one commander tree. */
import { Command } from 'commander';
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
import { errorLine } from './run';
import { InputError, sifkitVersion } from '../index';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('sifkit')
    .description(
      'Take an HPC container from definition to retirement: render, build, convert to SIF, test, promote, retire.',
    )
    .version(sifkitVersion())
    .showHelpAfterError('(run sifkit --help for usage)')
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // Usage errors read like every other error: one `sifkit: error:` line.
      outputError: (s, write) => write(s.replace(/^error: /, 'sifkit: error: ')),
    })
    // Bad usage exits 2, as every other bad input does.
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
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
  return program;
}

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
  buildProgram()
    .parseAsync(argv)
    .catch((e) => {
      // Commands report their own errors (runCommand); this is what escapes before one runs.
      const line = errorLine(e);
      process.stderr.write(`sifkit: error: ${line.message}\n`);
      process.exit(line.exitCode);
    });
}
