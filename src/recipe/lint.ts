import type * as DockerfileUtils from 'dockerfile-utils';
import { InputError } from '../errors';
import type { ParsedDockerfile } from './parsed-dockerfile';

const LSP_ERROR = 1;

export interface LintProblem {
  line: number;
  severity: 'error' | 'warning';
  message: string;
}

/**
 * The last Dockerfiles linted and their problems. Linting is pure and the
 * dearest part of a render (dockerfile-utils parses the text again and
 * checks every instruction), and the same definition is rendered again
 * and again: by `render` then `build`, by each check of a matrix, by
 * tests. A few are kept, looked up by their whole text.
 */
const LINTED = new Map<string, readonly LintProblem[]>();
const LINTED_KEPT = 32;

/** Lints a Dockerfile with dockerfile-utils' validator (a real Dockerfile parser). */
export function lintDockerfile(text: string): LintProblem[] {
  let problems = LINTED.get(text);
  if (problems === undefined) {
    // Loaded here, on the first lint: the package takes a twentieth of a second, which commands that render nothing need not pay.
    const { validate } = require('dockerfile-utils') as typeof DockerfileUtils;
    // The one second parse of a rendered Dockerfile, kept on purpose: dockerfile-utils' validate takes only
    // text and parses it itself (dockerValidator.js: DockerfileParser.parse(document.getText())), and has no
    // entry point for a parsed Dockerfile. sifkit's own checks (rawDownloads, fetches, steps) read the render's parse.
    problems = validate(text).map((d) => ({
      line: d.range.start.line + 1,
      // Diagnostics use the LSP scale: 1 error, 2 warning.
      severity: d.severity === LSP_ERROR ? 'error' : 'warning',
      message: typeof d.message === 'string' ? d.message : d.message.value,
    }));
    if (LINTED.size >= LINTED_KEPT) LINTED.delete(LINTED.keys().next().value!);
    LINTED.set(text, problems);
  }
  // Copies: a caller adds its own warnings to the list it gets.
  return problems.map((p) => ({ ...p }));
}

/** Fails on the first lint error, naming the variant and the line. */
export function assertLintClean(text: string, what: string): LintProblem[] {
  const problems = lintDockerfile(text);
  const error = problems.find((p) => p.severity === 'error');
  if (error) {
    const line = text.split('\n')[error.line - 1]?.trim() ?? '';
    throw new InputError('lint', `${what}: Dockerfile line ${error.line}: ${error.message}`, {
      hint: line.slice(0, 120),
    });
  }
  return problems;
}

/** The build-time file server as a rendered step names it: the one place a RUN may download from. */
const FILE_SERVER_URL = /^http:\/\/127\.0\.0\.1:\$\{?SERVER_PORT\}?\//;
const URLISH = /^(?:[a-z][a-z0-9+.-]*:\/\/|git@)/i;

/** The fragment a line of the rendered Dockerfile came from (render writes `# ---- rel ----` before each). */
function fragmentOf(lines: string[], line: number): string {
  for (let i = line - 1; i >= 0; i--) {
    const m = /^# ---- (.+) ----$/.exec(lines[i]);
    if (m) return m[1];
  }
  return 'the definition';
}

/** Shell words of one command, quotes removed (enough to see programs and URLs; not a shell). */
function words(command: string): string[] {
  return (command.match(/'[^']*'|"[^"]*"|[^\s'"]+/g) ?? []).map((w) => w.replace(/^['"]|['"]$/g, ''));
}

/** Why a command downloads from outside, or undefined. */
function rawDownload(ws: string[]): string | undefined {
  let i = 0;
  while (i < ws.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(ws[i]) || ws[i] === 'sudo' || ws[i] === 'exec')) i++;
  const prog = (ws[i] ?? '').split('/').pop() ?? '';
  const rest = ws.slice(i + 1);
  const urls = rest.filter((w) => URLISH.test(w));
  const outside = urls.find((u) => !FILE_SERVER_URL.test(u));
  if (prog === 'curl' || prog === 'wget') {
    if (outside) return `${prog} downloads ${outside}`;
    if (urls.length === 0) return `${prog} downloads from a URL sifkit cannot read (${rest.join(' ').slice(0, 60)})`;
    return undefined;
  }
  if (prog === 'git' && ['clone', 'fetch', 'pull', 'submodule', 'ls-remote', 'archive'].includes(rest[0] ?? ''))
    return `git ${rest[0]} downloads ${urls[0] ?? rest.slice(1).join(' ').slice(0, 60)}`;
  const pipAt =
    prog === 'pip' || prog === 'pip3'
      ? 0
      : /^python[0-9.]*$/.test(prog) && rest[0] === '-m' && rest[1] === 'pip'
        ? 2
        : -1;
  if (pipAt >= 0 && rest[pipAt] === 'install') {
    const direct = rest.find((w) => URLISH.test(w) || w.startsWith('git+'));
    if (direct) return `pip install downloads ${direct}`;
  }
  return undefined;
}

/**
 * Downloads no source declares: every file a RUN fetches must come from
 * the build-time file server, put there by `{{ source "NAME" "PATH" }}`
 * from a declared, pinned source (recipe/sources.ts). Reads the rendered
 * Dockerfile with dockerfile-ast (the RUN and ADD instructions and their
 * text); package managers installing by name (apt, zypper, conda, pip
 * without a URL) are not downloads of files and are not judged here.
 */
export function rawDownloads(dockerfile: ParsedDockerfile): LintProblem[] {
  const lines = dockerfile.text.split('\n');
  const out: LintProblem[] = [];
  for (const ins of dockerfile.ast.getInstructions()) {
    const keyword = ins.getKeyword();
    const line = ins.getRange().start.line + 1;
    const where = `${fragmentOf(lines, line - 1)}: `;
    if (keyword === 'ADD') {
      const url = ins
        .getArguments()
        .map((a) => a.getValue())
        .find((v) => URLISH.test(v));
      if (url) out.push({ line, severity: 'error', message: `${where}ADD downloads ${url}, which no source declares` });
      continue;
    }
    if (keyword !== 'RUN') continue;
    const body = (ins.getArgumentsContent() ?? '')
      .replace(/\\\r?\n/g, ' ')
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n');
    for (const command of body.split(/;|&&|\|\||\||\n|\(|\)|`|\$\(/)) {
      const why = rawDownload(words(command));
      if (why) out.push({ line, severity: 'error', message: `${where}${why}, which no source declares` });
    }
  }
  return out;
}

/** Refuses a definition that downloads anything undeclared, naming the first such step. */
export function assertNoRawDownloads(dockerfile: ParsedDockerfile, what: string): void {
  const problem = rawDownloads(dockerfile)[0];
  if (problem) {
    throw new InputError('undeclared-download', `${what}: Dockerfile line ${problem.line}: ${problem.message}`, {
      hint: 'declare the file under sources: in recipe.yaml (URL and sha256; git: the commit) and fetch it with {{ source "NAME" "PATH" }}',
    });
  }
}
