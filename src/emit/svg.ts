/**
 * The one way a value enters SVG (the benchmarks' charts): text and
 * attribute values with `& < > " '` as character references, and numbers
 * as finite decimals. XML forbids most control characters outright, so
 * they are refused, not escaped. Pure.
 */
import { checkText } from './text';

const REFS: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text or a quoted attribute value. */
export function svgText(value: string, what = 'value'): string {
  checkText(value, what, 'SVG', /[\0-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/, 'a character XML cannot hold');
  return value.replace(/[&<>"']/g, (c) => REFS[c]);
}

/** A coordinate or a length: finite, at most `digits` decimals. */
export function svgNumber(n: number, what = 'number', digits = 2): string {
  if (!Number.isFinite(n)) throw new Error(`${what} ${n} is not a finite number for SVG`);
  return String(Number(n.toFixed(digits)));
}
