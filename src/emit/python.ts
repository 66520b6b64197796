/**
 * The one way a value enters Python (EasyConfigs, run by EasyBuild): a
 * single-quoted string literal in plain ASCII, every character outside
 * printable ASCII (and `'`, `\`) written as \x, \u or \U escape. Python
 * strings hold any code point, NUL included. Pure.
 */
import { checkText } from './text';

export function pyString(value: string, what = 'value'): string {
  checkText(value, what, 'Python');
  let out = "'";
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c < 0x7f && ch !== "'" && ch !== '\\') out += ch;
    else if (c < 0x100) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c < 0x10000) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += `\\U${c.toString(16).padStart(8, '0')}`;
  }
  return out + "'";
}
