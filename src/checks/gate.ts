/**
 * The regression gate: a new image's figures against those of the image
 * promoted for the same series. Latency may not rise, bandwidth may not
 * fall, by more than the tolerance, at any message size both measured.
 * Pure.
 */
import type { CheckResult } from './judge';

/** A tolerance is a fraction of the figure, from 0 (no worse at all) up to, not including, 10. */
export function isTolerance(t: number): boolean {
  return t >= 0 && t < 10;
}

export interface Regression {
  check: string;
  size: number;
  kind: 'latency' | 'bandwidth';
  baseline: number;
  value: number;
  /** Relative change, positive = worse. */
  worseBy: number;
}

export function compareFigures(current: CheckResult[], baseline: CheckResult[], tolerance: number): Regression[] {
  const out: Regression[] = [];
  for (const c of current) {
    const b = baseline.find((x) => x.name === c.name);
    if (!c.figures || !b?.figures || c.figures.kind === 'unknown' || c.figures.kind !== b.figures.kind) continue;
    const kind = c.figures.kind;
    const base = new Map(b.figures.points.map((p) => [p.size, p.value]));
    for (const p of c.figures.points) {
      const old = base.get(p.size);
      if (old === undefined || old <= 0) continue;
      const worseBy = kind === 'latency' ? (p.value - old) / old : (old - p.value) / old;
      if (worseBy > tolerance) out.push({ check: c.name, size: p.size, kind, baseline: old, value: p.value, worseBy });
    }
  }
  return out;
}
