/**
 * The one way a value enters SVG (the benchmarks' charts): text and
 * attribute values with `& < > " '` as character references, and numbers
 * as finite decimals. Tab, LF and CR as references too: an XML parser
 * turns a raw CR (or CR LF) into LF, and a raw tab, LF or CR in an
 * attribute into a space, while a reference keeps the character. XML
 * forbids most control characters outright, so they are refused, not
 * escaped. Pure.
 */
import { checkText } from './text';

const REFS: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/** Text or a quoted attribute value. */
export function svgText(value: string, what = 'value'): string {
  checkText(value, what, 'SVG', /[\0-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/, 'a character XML cannot hold');
  return value.replace(/[&<>"'\t\n\r]/g, (c) => REFS[c]);
}

/** A coordinate or a length: finite, at most `digits` decimals. */
export function svgNumber(n: number, what = 'number', digits = 2): string {
  if (!Number.isFinite(n)) throw new Error(`${what} ${n} is not a finite number for SVG`);
  return String(Number(n.toFixed(digits)));
}
