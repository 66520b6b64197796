/** Whether a check passed, from its exit status and output. Pure. */
import { parseOsu, type OsuResult } from './osu';
import type { Check } from '../recipe/checks';

export type Outcome = 'passed' | 'failed' | 'timeout' | 'cancelled' | 'node-failure' | 'not-run';

export interface CheckResult {
  name: string;
  outcome: Outcome;
  passed: boolean;
  exitCode: number | null;
  durationMs: number;
  /** Why it failed, in one line. */
  reason?: string;
  /** The last lines of its output. */
  tail: string;
  figures?: OsuResult;
}

function expectMatches(expect: string, output: string): boolean {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(expect);
  return re ? new RegExp(re[1], re[2]).test(output) : output.includes(expect);
}

export function judge(
  check: Check,
  run: { exitCode: number | null; output: string; durationMs: number; outcome?: Outcome },
): CheckResult {
  const tail = run.output.split('\n').slice(-15).join('\n');
  const base = { name: check.name, exitCode: run.exitCode, durationMs: run.durationMs, tail };
  if (run.outcome && run.outcome !== 'passed' && run.outcome !== 'failed')
    return {
      ...base,
      outcome: run.outcome,
      passed: false,
      reason: {
        timeout: `timed out after ${check.timeoutSeconds} s`,
        cancelled: 'the job was cancelled',
        'node-failure': 'the node failed',
        'not-run': 'did not run',
      }[run.outcome],
    };
  // timeout(1) answers 124, or 137 when it had to KILL: with the full time spent, that was the limit.
  if ((run.exitCode === 124 || run.exitCode === 137) && run.durationMs >= check.timeoutSeconds * 1000 - 1000)
    return { ...base, outcome: 'timeout', passed: false, reason: `timed out after ${check.timeoutSeconds} s` };
  if (run.exitCode !== 0) return { ...base, outcome: 'failed', passed: false, reason: `exit status ${run.exitCode}` };
  if (check.expect && !expectMatches(check.expect, run.output))
    return { ...base, outcome: 'failed', passed: false, reason: `output lacks ${JSON.stringify(check.expect)}` };
  if (check.figures) {
    const figures = parseOsu(run.output);
    if (!figures.points.length)
      return { ...base, outcome: 'failed', passed: false, reason: 'no OSU figures in the output' };
    if (figures.kind !== check.figures)
      return {
        ...base,
        outcome: 'failed',
        passed: false,
        reason: `expected ${check.figures} figures, got ${figures.kind}`,
        figures,
      };
    return { ...base, outcome: 'passed', passed: true, figures };
  }
  return { ...base, outcome: 'passed', passed: true };
}
