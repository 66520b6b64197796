/**
 * What every emitter checks first: the value is text a file can hold.
 * A lone UTF-16 surrogate has no UTF-8 form (written, it becomes U+FFFD,
 * so the file would not hold the value), and each language says which
 * further characters it cannot hold. Pure.
 */
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';

/** Refuses a lone surrogate, and any character `refuse` matches, naming `what` and `lang`. */
export function checkText(value: string, what: string, lang: string, refuse?: RegExp, why?: string): string {
  if (typeof value !== 'string') throw new InputError('bad-value', `${what}: not text`);
  // A lone surrogate (not part of a pair) cannot be written as UTF-8.
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value))
    throw new InputError(
      'bad-value',
      `${what}: ${escapeForMessage(value)} is not valid Unicode (a lone surrogate); ${lang} cannot hold it`,
    );
  if (refuse && refuse.test(value))
    throw new InputError(
      'bad-value',
      `${what}: ${escapeForMessage(value)} contains ${why ?? 'a character'} that ${lang} cannot hold`,
    );
  return value;
}
