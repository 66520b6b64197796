import { validate } from 'dockerfile-utils';
import { InputError } from '../errors';

const LSP_ERROR = 1;

export interface LintProblem {
  line: number;
  severity: 'error' | 'warning';
  message: string;
}

/** Lints a Dockerfile with dockerfile-utils' validator (a real Dockerfile parser). */
export function lintDockerfile(text: string): LintProblem[] {
  return validate(text).map((d) => ({
    line: d.range.start.line + 1,
    // Diagnostics use the LSP scale: 1 error, 2 warning.
    severity: d.severity === LSP_ERROR ? 'error' : 'warning',
    message: typeof d.message === 'string' ? d.message : d.message.value,
  }));
}

/** Fails on the first lint error, naming the variant and the line. */
export function assertLintClean(text: string, what: string): LintProblem[] {
  const problems = lintDockerfile(text);
  const error = problems.find((p) => p.severity === 'error');
  if (error) {
    const line = text.split('\n')[error.line - 1]?.trim() ?? '';
    throw new InputError('lint', `${what}: Dockerfile line ${error.line}: ${error.message}`, { hint: line.slice(0, 120) });
  }
  return problems;
}
