/**
 * Output for people and programs: the one table renderer every command
 * uses, human-readable sizes, ages and durations, and one JSON document.
 * Pure: the caller says how wide the table may be and whether to colour it
 * (`outputStyle` decides both from the stream and the environment).
 */
import { terminalMessage } from '../index';

/** A column: its header, and how its cells behave when space is short. */
export interface Column {
  header: string;
  /** Numbers, sizes, ages: right-aligned so their units line up. */
  align?: 'left' | 'right';
  /** May be cut (in the middle, with …) to fit the width; the first such column is cut first. */
  shrink?: boolean;
  /** A colour for a cell by its text (applied only when colour is on). */
  color?: (cell: string) => Colour | undefined;
  /**
   * Printed as a heading line whenever its value changes, the other columns
   * indented beneath: for a long key many rows share (an image's stem).
   */
  group?: boolean;
}

export type Colour = 'red' | 'green' | 'yellow' | 'dim';

export interface TableStyle {
  /** The widest a line may be (default 100). */
  width: number;
  color: boolean;
}

const SGR: Record<Colour | 'bold', string> = { red: '31', green: '32', yellow: '33', dim: '2', bold: '1' };
const paint = (on: boolean, c: Colour | 'bold' | undefined, s: string) =>
  on && c ? `\u001b[${SGR[c]}m${s}\u001b[0m` : s;
const GAP = '  ';
const MIN_SHRUNK = 8;

/**
 * How to print on `stream`: colour only on a terminal, never with NO_COLOR
 * (no-color.org: set to anything non-empty) or TERM=dumb; a terminal's own
 * width when it is wider than 100, else 100.
 */
export function outputStyle(
  stream: { isTTY?: boolean; columns?: number } = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): TableStyle {
  const tty = Boolean(stream.isTTY);
  return {
    color: tty && !env.NO_COLOR && env.TERM !== 'dumb',
    width: tty && stream.columns && stream.columns > 100 ? stream.columns : 100,
  };
}

/** Cuts `s` to `n` characters, keeping both ends (names differ at their ends). */
export function cutMiddle(s: string, n: number): string {
  if (s.length <= n) return s;
  if (n <= 1) return s.slice(0, n);
  const tail = Math.floor((n - 1) / 2);
  return `${s.slice(0, n - 1 - tail)}…${s.slice(s.length - tail)}`;
}

/**
 * Renders rows under labelled columns, two spaces apart, no trailing blanks.
 * When wider than `style.width`, shrinkable columns are cut until it fits
 * (never below 8 characters); cells never contain newlines. A `group`
 * column becomes a heading line over the rows that share its value.
 */
export function table(rows: string[][], columns: Array<Column | string>, style: TableStyle = outputStyle()): string {
  const all: Column[] = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  const g = all.findIndex((c) => c.group);
  const cols = all.filter((_, i) => i !== g);
  const indent = g >= 0 ? '  ' : '';
  // Every cell through the terminal's rule: a value read from a file or a snapshot cannot move the
  // cursor or recolour the table (cells already escaped have no control characters left: unchanged).
  const clean = rows.map((r) => all.map((_, i) => terminalMessage((r[i] ?? '').replace(/[\r\n\t]+/g, ' '))));
  const body = clean.map((r) => r.filter((_, i) => i !== g));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...body.map((r) => r[i].length)));
  const total = () => indent.length + widths.reduce((a, b) => a + b, 0) + GAP.length * (cols.length - 1);
  let over = total() - style.width;
  for (let i = 0; i < cols.length && over > 0; i++) {
    if (!cols[i].shrink) continue;
    const floor = Math.max(MIN_SHRUNK, cols[i].header.length);
    const cut = Math.min(over, Math.max(0, widths[i] - floor));
    widths[i] -= cut;
    over -= cut;
  }
  const line = (cells: string[], header: boolean) =>
    indent +
    cells
      .map((raw, i) => {
        const c = cols[i];
        const text = cutMiddle(raw, widths[i]);
        const last = i === cells.length - 1;
        const padded = c.align === 'right' ? text.padStart(widths[i]) : last ? text : text.padEnd(widths[i]);
        return paint(style.color, header ? 'bold' : c.color?.(raw), padded);
      })
      .join(GAP)
      .trimEnd();
  const out: string[] = [];
  if (g >= 0) out.push(paint(style.color, 'bold', all[g].header));
  out.push(
    line(
      cols.map((c) => c.header),
      true,
    ),
  );
  let heading: string | undefined;
  body.forEach((r, i) => {
    if (g >= 0 && clean[i][g] !== heading) {
      heading = clean[i][g];
      out.push(cutMiddle(heading, style.width));
    }
    out.push(line(r, false));
  });
  return out.join('\n') + '\n';
}

/** Words joined by spaces, wrapped to `width`, continuation lines indented by `indent`. */
export function wrapWords(words: string[], width: number, indent = '  '): string {
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur && cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = indent + w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(cur);
  return lines.join('\n') + '\n';
}

export function jsonDoc(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** Collects repeatable `--set k=v` flags. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A size in the unit that keeps it short: `812 B`, `4.0 KiB`, `174.1 MiB`, `2.3 GiB`. */
export function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let n = bytes;
  let u = 0;
  while (Math.abs(n) >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}

/** A duration: `0.4 s`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. */
export function humanDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** An age from days: `< 1 h`, `3 h`, `12 d`, `2.5 y`; `?` when unknown. */
export function humanAge(days: number | undefined): string {
  if (days === undefined || Number.isNaN(days)) return '?';
  const hours = days * 24;
  if (hours < 1) return '< 1 h';
  if (days < 1) return `${Math.floor(hours)} h`;
  if (days < 365) return `${Math.floor(days)} d`;
  return `${(days / 365).toFixed(1)} y`;
}
