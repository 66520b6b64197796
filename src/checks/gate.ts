/**
 * The regression gate: a new image's figures against those of the image
 * promoted for the same series. Latency may not rise, bandwidth may not
 * fall, by more than the tolerance, at any message size both measured; and
 * a size the baseline measured must be measured again: a benchmark cut
 * short can exit 0, and its missing sizes would otherwise pass unseen.
 * Pure.
 */
import type { RunGate } from '../validate/schemas/results';
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
  /** Null when the run did not measure this size. */
  value: number | null;
  /** Relative change, positive = worse; null when the size was not measured. */
  worseBy: number | null;
}

export function compareFigures(current: CheckResult[], baseline: CheckResult[], tolerance: number): Regression[] {
  const out: Regression[] = [];
  for (const c of current) {
    const b = baseline.find((x) => x.name === c.name);
    if (!c.figures || !b?.figures || c.figures.kind === 'unknown' || c.figures.kind !== b.figures.kind) continue;
    const kind = c.figures.kind;
    const now = new Map(c.figures.points.map((p) => [p.size, p.value]));
    for (const { size, value: old } of b.figures.points) {
      const value = now.get(size);
      if (value === undefined) {
        out.push({ check: c.name, size, kind, baseline: old, value: null, worseBy: null });
        continue;
      }
      if (old <= 0) continue;
      const worseBy = kind === 'latency' ? (value - old) / old : (old - value) / old;
      if (worseBy > tolerance) out.push({ check: c.name, size, kind, baseline: old, value, worseBy });
    }
  }
  return out;
}

/** `3 figure(s) worse than old.sif by more than 10%` (`… or not measured` when some are missing). */
export function gateSummary(regressions: readonly Regression[], baseline: string, tolerance: number): string {
  const missing = regressions.some((r) => r.value === null);
  return `${regressions.length} figure(s) worse than ${baseline} by more than ${(tolerance * 100).toFixed(0)}%${missing ? ' or not measured' : ''}`;
}

/** The same for a gate's verdict as a run records it (the baseline unnamed when it has none). */
export function runGateSummary(gate: RunGate): string {
  return gateSummary(gate.regressions, gate.baseline ?? 'the baseline', gate.tolerance);
}

/** The regression to name first: a size not measured, else the one worse by most. */
export function worstRegression(regressions: readonly Regression[]): Regression | undefined {
  const rank = (r: Regression) => (r.worseBy === null ? Infinity : r.worseBy);
  return [...regressions].sort((a, b) => rank(b) - rank(a))[0];
}

/** One regression in words: `pingpong at 4096 B, latency 2.1 → 3.4 (62% worse)`. */
export function describeRegression(r: Regression): string {
  const at = `${r.check} at ${r.size} B`;
  if (r.value === null || r.worseBy === null)
    return `${at}, measured by the baseline (${r.baseline}) but not by this run`;
  return `${at}, ${r.kind} ${r.baseline} → ${r.value} (${(r.worseBy * 100).toFixed(0)}% worse)`;
}
