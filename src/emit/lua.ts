/**
 * The one way a value enters Lua (Lmod modules, run by every user who
 * loads them): a double-quoted string literal in plain ASCII, every byte
 * of the value's UTF-8 outside printable ASCII (and `"`, `\`) written as
 * a three-digit decimal escape, which every Lua since 5.1 reads back as
 * that byte. Lua strings hold any byte, NUL included. Pure.
 */
import { checkText } from './text';

export function luaString(value: string, what = 'value'): string {
  checkText(value, what, 'Lua');
  let out = '"';
  for (const b of Buffer.from(value, 'utf8')) {
    if (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c) out += String.fromCharCode(b);
    else out += `\\${String(b).padStart(3, '0')}`;
  }
  return out + '"';
}
