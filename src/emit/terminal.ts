/**
 * The one way a value read from a file (a SIF's labels, environment,
 * runscript) reaches a terminal: control characters (C0 but tab, DEL,
 * C1), line and paragraph separators and the bidirectional overrides are
 * shown as `\xNN` / `\u{NNNN}`, so no value can move the cursor, retitle
 * the window, ring the bell, hide text or reorder what is shown; and a
 * backslash is doubled, so what is shown reads back unambiguously. A line
 * break is kept where the caller shows a block. Pure.
 */

const SHOWN = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\]/g;
const SHOWN_IN_BLOCK = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\]/g;

function shown(c: string): string {
  if (c === '\\') return '\\\\';
  const n = c.codePointAt(0)!;
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
}

const SHOWN_IN_MESSAGE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * An error message or hint as one line: as terminalLine, but a backslash
 * is left as it is, since messages quote their values through
 * escapeForMessage, whose backslashes are already escapes.
 */
export function terminalMessage(value: string): string {
  return value.replace(SHOWN_IN_MESSAGE, shown);
}

/** One line for a terminal. */
export function terminalLine(value: string): string {
  return value.replace(SHOWN, shown);
}

/** A block for a terminal: line breaks kept, everything else as terminalLine. */
export function terminalBlock(value: string): string {
  return value.replace(SHOWN_IN_BLOCK, shown);
}
