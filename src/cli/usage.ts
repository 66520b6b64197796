/**
 * Usage errors, read like every other error: one `sifkit: error:` line
 * (commander's "Did you mean" folded into it), a hint naming the help of
 * the command that was meant, exit 2, and with --json the error document
 * on stdout. Also a flag commander would take silently: one value given
 * twice (`--root a --root b` acted on b).
 */
import type { Command, CommanderError } from 'commander';
import { InputError } from '../index';
import type { ErrorLine } from './run';

/** The words before `--`: what sifkit itself reads (after it, operands). */
function ownWords(args: readonly string[]): readonly string[] {
  const end = args.indexOf('--');
  return end < 0 ? args : args.slice(0, end);
}

/** Whether the command line asks for JSON (`--json` before any `--`). */
export function wantsJson(args: readonly string[]): boolean {
  return ownWords(args).includes('--json');
}

/** The names of the deepest command the words reach (`['host', 'snapshot']`); [] for none. */
export function commandPath(program: Command, args: readonly string[]): string[] {
  const names: string[] = [];
  let at = program;
  for (const word of ownWords(args)) {
    const sub = at.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) continue;
    names.push(sub.name());
    at = sub;
  }
  return names;
}

/** A commander usage error as sifkit shows it. */
export function usageLine(err: CommanderError, path: string[]): ErrorLine {
  const [first, ...rest] = err.message.replace(/^error: /, '').split('\n');
  const suggestion = rest.find((l) => /^\(Did you mean /.test(l));
  const message = suggestion ? `${first} (${suggestion.slice(1, -1).replace(/^Did/, 'did')})` : first;
  const hint = path.length ? `sifkit help ${path.join(' ')}` : 'sifkit --help';
  return {
    code: err.code.replace(/^commander\./, 'usage-').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
    message,
    hint: `${hint} shows the usage`,
    exitCode: 2,
  };
}

/**
 * Refuses a flag of one value given twice, before any command runs: which
 * one was meant cannot be known. Repeatable flags (those that collect
 * their values), variadic ones and switches (`--json` twice means the
 * same) are left alone. For `command` and every command under it.
 */
export function refuseRepeatedFlags(command: Command): void {
  for (const option of command.options) {
    if (option.parseArg || option.variadic || !(option.required || option.optional)) continue;
    let first: string | undefined;
    command.on(`option:${option.name()}`, (value?: string) => {
      if (first === undefined) first = value ?? '';
      else
        throw new InputError(
          'repeated-option',
          `${option.long ?? option.flags} was given twice (${JSON.stringify(first)}, then ${JSON.stringify(value ?? '')}): give it once`,
        );
    });
  }
  for (const sub of command.commands) refuseRepeatedFlags(sub);
}
