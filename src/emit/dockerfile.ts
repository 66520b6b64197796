/**
 * The one way a value enters a Dockerfile (LABEL and ENV values): a
 * double-quoted word, `\`, `"` and `$` escaped so the builder neither ends
 * the word nor expands a variable. A Dockerfile instruction is one line (a
 * continuation joins lines and drops the break), so line breaks, other
 * control characters and NUL are refused. Pure.
 */
import { checkText } from './text';

export function dockerfileString(value: string, what = 'value'): string {
  checkText(value, what, 'a Dockerfile', /[\u0000-\u001f\u007f]/, 'a line break or control character');
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}
