/**
 * The one way a value enters Markdown (USER.md, pull request bodies). How a
 * value is written depends on where it lands:
 * - prose (and table cells): every ASCII punctuation character
 *   backslash-escaped and every white-space or control character a numeric
 *   character reference, so the value is plain text: no HTML, no link, no
 *   list, no heading, no line of its own, no cell break;
 * - a code span, a fenced code block or an HTML comment the template wrote:
 *   the value is shown as written, so it may not hold what would end that
 *   place (a backtick, a line break, `-->`), nor `< > & |` (defence if the
 *   place is misjudged), nor any control character, nor leading or
 *   trailing spaces (a code span trims them).
 * Control characters are refused everywhere (a reference cannot stand for
 * them, NUL becomes U+FFFD, and raw they reach the terminal of whoever
 * reads the page). Pure.
 */
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { checkText } from './text';

export type MarkdownPlace = 'text' | 'code' | 'fence' | 'comment';

/** White space (as JavaScript's trim and Markdown's parsers see it): written as a character reference, so nothing trims or breaks on it. */
const SPACE = /[\t\n\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;
/**
 * Control characters: a character reference cannot stand for them, and raw they would reach a terminal showing the page.
 * The bidirectional controls too: as text or as a reference, they reorder what a reader sees of the page around them
 * (a command shown in one order, copied in another).
 */
const CONTROL = /[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** A value as plain Markdown text (prose, a heading, a table cell). */
export function mdText(value: string, what = 'value'): string {
  checkText(value, what, 'Markdown', CONTROL, 'a control character or a bidirectional control');
  return value.replace(new RegExp(`[!-/:-@[-\`{-~]|${SPACE.source}`, 'g'), (c) =>
    SPACE.test(c) ? `&#${c.codePointAt(0)};` : `\\${c}`,
  );
}

/** `~~~` would close a tilde fence the template opened (a backtick fence is closed by the backtick, refused anyway). */
const RAW_REFUSED = new RegExp(`[\\u0000-\\u001f\\u2028\\u2029\`<>&|]|${CONTROL.source}|-->|~~~|^\\s|\\s$|^$`);

/** A value shown as written inside a code span, fenced block or comment the template opened. */
export function mdRaw(value: string, what = 'value', place: MarkdownPlace = 'code'): string {
  return checkText(
    value,
    what,
    `a Markdown ${place === 'fence' ? 'code block' : place === 'comment' ? 'comment' : 'code span'}`,
    RAW_REFUSED,
    'a backtick, line break, control character or bidirectional control, < > & |, --> or ~~~, a leading or trailing space, or is empty',
  );
}

/** A value as a whole code span: `` `value` ``. */
export function mdCode(value: string, what = 'value'): string {
  return `\`${mdRaw(value, what, 'code')}\``;
}

/** A value written where `place` says. */
export function mdValue(value: string, place: MarkdownPlace, what = 'value'): string {
  return place === 'text' ? mdText(value, what) : mdRaw(value, what, place);
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/**
 * How an HTML block (CommonMark 4.6) that starts on a line ends: a Markdown
 * renderer passes its lines through as HTML, where a backslash escapes
 * nothing, so no value may be written there but inside a comment. The
 * comment block (`<!--`) ends at `-->`, the raw-text ones at their closing
 * tag, the others at a blank line. A line that could start one is taken as
 * starting one (refusing more is safe).
 */
function htmlBlockEnd(line: string): RegExp | undefined {
  if (/^ {0,3}<!--/.test(line)) return /-->/;
  if (/^ {0,3}<(?:script|pre|style|textarea)(?:[\s>]|$)/i.test(line)) return /<\/(?:script|pre|style|textarea)>/i;
  if (/^ {0,3}<\?/.test(line)) return /\?>/;
  if (/^ {0,3}<![A-Za-z]/.test(line)) return />/;
  if (/^ {0,3}<!\[CDATA\[/.test(line)) return /\]\]>/;
  if (/^ {0,3}<\/?[A-Za-z]/.test(line)) return /^\s*$/;
  return undefined;
}

/**
 * Where, outside code, a value would be markup or a link rather than text,
 * whatever the value: an HTML tag or autolink still open before it, a
 * link's destination, a link reference definition.
 */
function markupPlace(line: string, before: string): string | undefined {
  if (/<(?:[A-Za-z/!?][^>]*)?$/.test(before)) return 'an HTML tag or autolink';
  if (/\]\([^)]*$/.test(before)) return 'a link destination';
  if (/^ {0,3}\[[^\]]*\]:/.test(line)) return 'a link reference definition';
  return undefined;
}

/**
 * Fills a Markdown template's `{{ name }}` placeholders in one pass, each
 * value written for the place it lands in (prose, code span, fenced code
 * block, HTML comment). An unknown placeholder is refused, and so is one
 * where a value would be HTML or a link (an HTML block but in a comment,
 * an HTML tag, a link destination): a template names its links and HTML
 * itself.
 */
export function fillMarkdown(template: string, values: Record<string, string>, what: string): string {
  let fence: { ch: string; len: number } | undefined;
  let comment = false;
  let htmlBlock: RegExp | undefined;
  return template
    .split('\n')
    .map((line, n) => {
      const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line);
      if (marker && !htmlBlock) {
        const m = marker[1];
        if (!fence) fence = { ch: m[0], len: m.length };
        else if (m[0] === fence.ch && m.length >= fence.len && /^ {0,3}[`~]+\s*$/.test(line)) fence = undefined;
        return line.replace(PLACEHOLDER, (p) => {
          throw new InputError('bad-template', `${what} line ${n + 1}: placeholder ${p} in a code fence line`);
        });
      }
      const inFence = fence !== undefined;
      const startComment = comment;
      // An HTML block starts on a line outside a fence and a comment, and ends on the line its end condition meets.
      if (!inFence && !startComment && !htmlBlock) htmlBlock = htmlBlockEnd(line);
      const inHtml = htmlBlock !== undefined;
      if (htmlBlock && htmlBlock.test(line)) htmlBlock = undefined;
      const out = line.replace(PLACEHOLDER, (p, k: string, at: number) => {
        if (!(k in values))
          throw new InputError('bad-template', `${what} line ${n + 1}: unknown placeholder ${escapeForMessage(p)}`);
        const before = line.slice(0, at);
        const place: MarkdownPlace = inFence
          ? 'fence'
          : inComment(startComment, before)
            ? 'comment'
            : inCodeSpan(line, at)
              ? 'code'
              : 'text';
        // A code span is one only where no HTML tag started first: in a tag or an HTML block its text is raw HTML.
        const markup =
          place === 'fence' || place === 'comment' ? undefined : inHtml ? 'an HTML block' : markupPlace(line, before);
        if (markup)
          throw new InputError(
            'bad-template',
            `${what} line ${n + 1}: placeholder ${p} is in ${markup}, where a value would be markup, not text`,
          );
        return mdValue(values[k], place, `${what} {{ ${k} }}`);
      });
      if (!inFence) comment = inComment(startComment, line);
      return out;
    })
    .join('\n');
}

/** Whether an HTML comment is open at the end of `text`, given whether one was open at its start. */
function inComment(open: boolean, text: string): boolean {
  let state = open;
  let i = 0;
  for (;;) {
    const next = state ? text.indexOf('-->', i) : text.indexOf('<!--', i);
    if (next < 0) return state;
    i = next + (state ? 3 : 4);
    state = !state;
  }
}

/**
 * Whether offset `at` of a template line is inside a code span: a run of
 * N backticks opens one that only the next run of exactly N closes
 * (CommonMark), so `` `` a ` b `` `` is one span, and a run with no such
 * closer is a literal backtick. A backslash escapes a backtick outside a
 * span only.
 */
function inCodeSpan(line: string, at: number): boolean {
  const runs: Array<{ pos: number; len: number; escaped: boolean }> = [];
  for (let i = 0; i < line.length;) {
    let n = 0;
    while (line[i + n] === '`') n++;
    if (n) runs.push({ pos: i, len: n, escaped: i > 0 && line[i - 1] === '\\' });
    i += n || 1;
  }
  for (let r = 0; r < runs.length; r++) {
    // Outside a span, `\`` is a literal backtick: the run opens with one fewer.
    const open = runs[r].escaped ? { pos: runs[r].pos + 1, len: runs[r].len - 1 } : runs[r];
    const close = runs.findIndex((c, k) => k > r && c.len === open.len);
    if (open.len === 0 || close < 0) continue;
    if (at > open.pos && at < runs[close].pos) return true;
    r = close;
  }
  return false;
}
