/**
 * The one way a value enters bash (job scripts, start-shell, the backup
 * command): a single-quoted word, which bash reads literally. NUL cannot
 * be in a bash word and is refused. Templates an operator writes (the
 * container command, the backup command) are filled in one pass, each
 * placeholder becoming one quoted word, so a value can never name a
 * placeholder or leave its quotes. Pure.
 */
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { checkText } from './text';

/** `value` as one bash word, read back exactly. */
export function bashWord(value: string, what = 'value'): string {
  checkText(value, what, 'bash', /\0/, 'a NUL character');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A command for a person to paste (a hint, a resume line): each word as it
 * is when bash reads it back unchanged, else quoted. Every command sifkit
 * prints with a path or name in it is built here, so a path holding a
 * space, `;` or `$(...)` is pasted as that path, never run.
 */
export function commandLine(words: readonly string[]): string {
  return words.map((w) => (/^[A-Za-z0-9_./=:@,+%-]+$/.test(w) ? w : bashWord(w, 'a word of a command'))).join(' ');
}

/**
 * `value` as one double-quoted word, `\ " ` $` escaped: the form apptainer
 * writes in a SIF's environment and runscript (kept so a converted image
 * matches apptainer's byte for byte), which sh and bash read back exactly,
 * also as the default of a `${NAME:-WORD}` expansion. One difference: a
 * `<(` or `>(` is written `<""(`, since bash (5.2, also as sh) reads them
 * in that default as the start of a process substitution and refuses the
 * whole script when no `)` follows; the empty quotes change nothing read.
 */
export function shDoubleQuoted(value: string, what = 'value'): string {
  checkText(value, what, 'sh', /\0/, 'a NUL character');
  return `"${value.replace(/[\\"`$]/g, (c) => `\\${c}`).replace(/([<>])\(/g, '$1""(')}"`;
}

/** A whole number as a bash word (no quoting needed, but checked). */
function numberWord(n: number, what: string): string {
  if (!Number.isSafeInteger(n)) throw new InputError('bad-value', `${what}: ${n} is not a whole number`);
  return String(n);
}

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/**
 * Fills `{name}` placeholders of a shell line written by its operator;
 * each becomes one quoted word. The template is one line (a here-document
 * body is expanded whatever its quotes, so a line break is refused). A placeholder inside quotes (where a
 * quoted word would not be one word) or an unknown one is refused. The
 * substitution is one pass over the template: a value is never scanned
 * for placeholders again.
 */
export function fillShell(template: string, values: Record<string, string | number>, what: string): string {
  // One line: a line break could open a here-document, whose body bash expands with no regard for quotes.
  checkText(template, what, 'a one-line shell template', /[\0\n\r]/, 'a NUL character or a line break');
  const quoted = quotedRanges(template);
  return template.replace(PLACEHOLDER, (m, k: string, at: number) => {
    if (!(k in values))
      throw new InputError(
        'bad-template',
        `${what}: unknown placeholder ${m} in ${escapeForMessage(template)} (known: ${Object.keys(values)
          .map((x) => `{${x}}`)
          .join(' ')})`,
      );
    if (quoted(at))
      throw new InputError(
        'bad-template',
        `${what}: ${m} is inside quotes in ${escapeForMessage(template)}; sifkit quotes it itself, write it bare`,
      );
    const v = values[k];
    return typeof v === 'number' ? numberWord(v, `${what} ${m}`) : bashWord(v, `${what} ${m}`);
  });
}

/** Which offsets of a shell line are inside quotes or after a backslash (a small scanner: ', ", \). */
function quotedRanges(line: string): (at: number) => boolean {
  const inside: boolean[] = [];
  let state: 'none' | 'single' | 'double' = 'none';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    inside[i] = state !== 'none';
    if (state === 'single') {
      if (c === "'") state = 'none';
    } else if (c === '\\') {
      inside[i + 1] = true;
      i++;
    } else if (state === 'double') {
      if (c === '"') state = 'none';
    } else if (c === "'") state = 'single';
    else if (c === '"') state = 'double';
  }
  if (state !== 'none') throw new InputError('bad-template', `unbalanced quotes in ${escapeForMessage(line)}`);
  return (at) => inside[at] === true;
}
