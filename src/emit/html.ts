/**
 * The one way a value enters HTML (the test report), as text or as a
 * quoted attribute value: `& < > " '` as character references, and CR as
 * one too (a parser turns a bare CR into LF). NUL cannot be in HTML text
 * (parsers drop or replace it) and is refused. Pure.
 */
import { checkText } from './text';

const REFS: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '\r': '&#13;',
};

export function htmlText(value: string, what = 'value'): string {
  checkText(value, what, 'HTML', /\0/, 'a NUL character');
  return value.replace(/[&<>"'\r]/g, (c) => REFS[c]);
}
