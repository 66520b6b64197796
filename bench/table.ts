/** One benchmark figure: sifkit beside its baseline, measured in the same run. */
export interface Figure {
  figure: string;
  sifkit: number;
  baseline?: number;
  unit: string;
  /** e.g. "< 1 s", "ratio <= 1.15" */
  target: string;
  /** True when the target is met. */
  met: boolean;
}

export function printTable(figures: Figure[]): void {
  const rows = figures.map((f) => [
    f.figure,
    `${f.sifkit.toFixed(3)} ${f.unit}`,
    f.baseline === undefined ? '-' : `${f.baseline.toFixed(3)} ${f.unit}`,
    f.baseline === undefined ? '-' : (f.sifkit / f.baseline).toFixed(2),
    f.target,
    f.met ? 'ok' : 'MISSED',
  ]);
  const head = ['figure', 'sifkit', 'baseline', 'ratio', 'target', ''];
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  for (const r of all) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '));
}

export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const v = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e9, v];
}

/** The middle value (the upper of the two middle ones for an even count). */
export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}
