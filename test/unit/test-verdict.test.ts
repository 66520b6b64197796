/** Issue 32: what a test run says about its image, and which run speaks for it now. Pure. */
import { latestPassing, latestRun, passedNow, resultsDirFor, runVerdict, type TestRun } from '../../src/checks/results';
import { judgeGate } from '../../src/checks/run';
import { mergeRuns } from '../../src/validate/schemas/results';
import * as path from 'node:path';

const check = (passed: boolean, value = 5) => ({
  name: 'lat',
  outcome: passed ? ('passed' as const) : ('failed' as const),
  passed,
  exitCode: passed ? 0 : 1,
  durationMs: 1,
  tail: '',
  figures: { kind: 'latency' as const, unit: 'us', points: [{ size: 1, value }] },
});
const run = (finished: string, over: Partial<TestRun> = {}): TestRun => ({
  image: 'x-dockerhash-aaaaaaaaaaaa.sif',
  stem: 'x',
  dockerhash: 'aaaaaaaaaaaa',
  recipe: 'r',
  runner: 'local',
  host: 'h',
  started: finished,
  finished,
  passed: true,
  checks: [check(true)],
  ...over,
});
const refusedGate = {
  verdict: 'refused' as const,
  tolerance: 0.1,
  baseline: 'old.sif',
  regressions: [{ check: 'lat', size: 1, kind: 'latency' as const, baseline: 1, value: 5, worseBy: 4 }],
};

describe('test verdicts', () => {
  it('a run the gate refused is refused, not passed; a failed check is failed whatever the gate said', () => {
    expect(runVerdict(run('2026-01-01'))).toBe('passed');
    expect(runVerdict(run('2026-01-01', { passed: false, gate: refusedGate }))).toBe('refused');
    expect(runVerdict(run('2026-01-01', { passed: false, checks: [check(false)], gate: refusedGate }))).toBe('failed');
    // A file written before gates were recorded reads as it always did.
    expect(runVerdict(run('2026-01-01', { passed: false, checks: [check(true)] }))).toBe('failed');
  });
  it('the latest run speaks for the image: an older pass does not hide a later refusal', () => {
    const runs = [run('2026-01-01T00:00:00Z'), run('2026-01-02T00:00:00Z', { passed: false, gate: refusedGate })];
    expect(latestRun(runs)!.finished).toBe('2026-01-02T00:00:00Z');
    expect(passedNow(runs)).toBeUndefined();
    // The baseline for a later image is still the last run that passed.
    expect(latestPassing(runs)!.finished).toBe('2026-01-01T00:00:00Z');
    expect(
      passedNow([...runs, run('2026-01-03T00:00:00Z', { gate: { verdict: 'off', tolerance: 0.1, regressions: [] } })])!
        .finished,
    ).toBe('2026-01-03T00:00:00Z');
  });
  it('the gate records its verdict, off with --no-gate, nothing without a baseline', () => {
    const baseline = { run: run('2026-01-01', { checks: [check(true, 1)] }), image: 'old.sif', source: 'b.json' };
    expect(judgeGate([check(true, 5)], baseline, { tolerance: 0.1, gate: true })).toMatchObject({
      verdict: 'refused',
      baseline: 'old.sif',
      regressions: [{ worseBy: 4 }],
    });
    expect(judgeGate([check(true, 1.05)], baseline, { tolerance: 0.1, gate: true })).toMatchObject({
      verdict: 'passed',
      regressions: [],
    });
    expect(judgeGate([check(true, 5)], baseline, { tolerance: 0.1, gate: false })).toEqual({
      verdict: 'off',
      tolerance: 0.1,
      regressions: [],
    });
    expect(judgeGate([check(true, 5)], undefined, { tolerance: 0.1, gate: true })).toBeUndefined();
  });
  it('keeps results beside the tree when there is one', () => {
    expect(resultsDirFor(undefined, '/t')).toBe('/t/.sifkit/test-results');
    expect(resultsDirFor('r', '/t')).toBe(path.resolve('r'));
    expect(resultsDirFor(undefined, undefined)).toBe(path.resolve('.sifkit/test-results'));
  });
  it('merges the runs of two records once each, in the order first seen (a run is its start and runner)', () => {
    const a = run('2026-01-01T00:00:00Z');
    const b = run('2026-01-02T00:00:00Z');
    const slurm = run('2026-01-01T00:00:00Z', { runner: 'slurm' });
    expect(mergeRuns([a], [a, b], undefined, [slurm])).toEqual([a, b, slurm]);
    expect(mergeRuns(undefined, [])).toEqual([]);
  });
});
