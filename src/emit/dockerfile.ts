/**
 * The one way a value enters a Dockerfile (LABEL and ENV values): a
 * double-quoted word, `\`, `"` and `$` escaped so the builder neither ends
 * the word nor expands a variable. A Dockerfile instruction is one line (a
 * continuation joins lines and drops the break), so line breaks, other
 * control characters and NUL are refused; and the builder refuses a line
 * of more than 65,535 bytes ("dockerfile line greater than max allowed
 * size"), so a word that long is refused here, and a rendered definition
 * with such a line by `checkDockerfileLines`. Pure.
 */
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { checkText } from './text';

/** The longest line, in bytes, the Docker builder's parser reads. */
export const DOCKERFILE_LINE_MAX = 65_535;

export function dockerfileString(value: string, what = 'value'): string {
  checkText(value, what, 'a Dockerfile', /[\u0000-\u001f\u007f]/, 'a line break or control character');
  const word = `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
  if (Buffer.byteLength(word) > DOCKERFILE_LINE_MAX)
    throw new InputError(
      'bad-value',
      `${what}: ${escapeForMessage(value)} is ${Buffer.byteLength(word)} bytes quoted; a Dockerfile line holds at most ${DOCKERFILE_LINE_MAX}`,
    );
  return word;
}

/** Refuses a definition with a line the builder would not read, naming the line. */
export function checkDockerfileLines(text: string, what: string): string {
  text.split('\n').forEach((line, i) => {
    const n = Buffer.byteLength(line);
    if (n > DOCKERFILE_LINE_MAX)
      throw new InputError(
        'bad-definition',
        `${what}: line ${i + 1} is ${n} bytes; the Docker builder reads lines of at most ${DOCKERFILE_LINE_MAX}`,
      );
  });
  return text;
}
