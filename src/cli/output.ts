/** Output helpers: a plain table for people, one JSON document for programs. */
export function table(rows: string[][], headers: string[]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]))).join('  ').trimEnd()).join('\n') + '\n';
}

export function jsonDoc(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** Collects repeatable `--set k=v` flags. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A size for people: `174.1 MiB`. */
export function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}
