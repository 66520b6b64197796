/**
 * The render-time check of what a definition fetches from the build-time
 * file server, read with a real Dockerfile parser (dockerfile-ast, the one
 * dockerfile-utils lints with). Pure.
 *
 * For each RUN it finds the URLs of the server (127.0.0.1, localhost or
 * [::1], written in the RUN itself or through an ENV value) and requires:
 *  - each names a served file the recipe gives a role;
 *  - a licensed file is removed within the same RUN, so no layer can hold
 *    it. "Removed" means: the file it was written to is deleted by a later
 *    `rm` of that path (or of a directory holding it, with -r) in the same
 *    RUN, and, when that RUN unpacks it with `tar -x` (or pipes the download
 *    into tar), `$REMOVE_CRAY_DEPS` runs after the unpacking in the same
 *    RUN. What the tarball held and what REMOVE_CRAY_DEPS deletes cannot be
 *    compared before the build: the leak scan proves it on the image.
 * A served file no step fetches is reported. ADD of a server URL is
 * refused: ADD keeps what it fetches in a layer.
 *
 * The check reads the definition as its fragments write it. A URL made in
 * a way it cannot follow (an ARG, a shell variable, a script) is not seen:
 * the leak scan after every build is the proof, this check is the early,
 * readable refusal.
 */
import * as path from 'node:path';
import { RefusedError } from '../errors';
import type { ParsedDockerfile } from './parsed-dockerfile';
import { expandVars, type ServedFile } from './served';

export interface Fetch {
  /** 1-based instruction number, as the build log counts steps. */
  step: number;
  /** 1-based line of the instruction in the rendered Dockerfile. */
  line: number;
  file: string;
  role: ServedFile['role'];
}

export interface FetchReport {
  fetches: Fetch[];
  /** Served files that no step fetches. */
  unfetched: string[];
}

interface EnvInstruction {
  getProperties(): Array<{ getName(): string; getValue(): string | null }>;
}

/** Applies one ENV instruction: each value expanded with what was set before. */
function applyEnv(env: Map<string, string>, ins: unknown): void {
  for (const p of (ins as EnvInstruction).getProperties()) env.set(p.getName(), expandVars(p.getValue() ?? '', env));
}

/**
 * The ENV a stage starts with: its parent stage's, when FROM names an
 * earlier stage (`FROM rocm AS osu`), else none. `stages` holds each
 * named stage's ENV as it stands; the new stage's name is added.
 */
function stageStart(stages: Map<string, Map<string, string>>, ins: { getArguments(): Array<{ getValue(): string }> }) {
  const args = ins
    .getArguments()
    .map((a) => a.getValue())
    .filter((a) => !a.startsWith('--'));
  const env = new Map(stages.get((args[0] ?? '').toLowerCase()) ?? []);
  if (args.length >= 3 && args[1].toLowerCase() === 'as') stages.set(args[2].toLowerCase(), env);
  return env;
}

/** The ENV in effect at the end of a Dockerfile (of its last stage, with what it inherits): what a tool's `$VAR/...` path is resolved against. */
export function definitionEnv(dockerfile: ParsedDockerfile): Map<string, string> {
  const stages = new Map<string, Map<string, string>>();
  let env = new Map<string, string>();
  for (const ins of dockerfile.ast.getInstructions()) {
    if (ins.getKeyword() === 'FROM') env = stageStart(stages, ins);
    if (ins.getKeyword() === 'ENV') applyEnv(env, ins);
  }
  return env;
}

const SERVER_URL = /^https?:\/\/(?:127\.0\.0\.1|localhost|\[::1\])(?::[^/]*)?\/(.*)$/;
const REMOVE_CRAY_DEPS = /^\$\{?REMOVE_CRAY_DEPS\}?$/;

interface Command {
  /** Words as written (quotes removed, variables not expanded). */
  raw: string[];
  /** Words with ENV values expanded. */
  words: string[];
  /** Its standard output goes into the next command (`|`). */
  pipesOut: boolean;
}

/** Splits a shell command line into simple commands and words: quotes, `;`, `&&`, `||`, `|`, `&`, newlines. */
export function splitCommands(text: string): Array<{ raw: string[]; pipesOut: boolean }> {
  const out: Array<{ raw: string[]; pipesOut: boolean }> = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '' | "'" | '"' = '';
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = (pipesOut: boolean) => {
    endWord();
    if (words.length > 0) out.push({ raw: words, pipesOut });
    words = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = '';
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      const n = text[++i];
      if (n !== '\n') {
        word += n;
        inWord = true;
      }
    } else if (c === ' ' || c === '\t') endWord();
    else if (c === ';' || c === '\n') endCommand(false);
    else if (c === '&' || c === '|') {
      const double = text[i + 1] === c;
      if (double) i++;
      endCommand(c === '|' && !double);
    } else {
      word += c;
      inWord = true;
    }
  }
  endCommand(false);
  return out;
}

/** A path as the shell would reach it from `cwd` (undefined when either is unknown). */
function resolveFrom(cwd: string | undefined, p: string): string | undefined {
  if (p.includes('$')) return undefined;
  if (p.startsWith('/')) return path.posix.normalize(p);
  return cwd === undefined ? undefined : path.posix.join(cwd, p);
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(
    '^' +
      glob
        .split('')
        .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('') +
      '$',
  );
}

/** Where a curl or wget writes what it fetched; 'stdout' when it does not write a file. */
function destination(cmd: Command, url: string, cwd: string | undefined): string | 'stdout' | undefined {
  const [prog, ...args] = cmd.words;
  const base = path.posix.basename(prog ?? '');
  const name = decodeURIComponent(
    url
      .replace(/[?#].*$/, '')
      .split('/')
      .pop() ?? '',
  );
  if (base === 'curl') {
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '-o' || a === '--output') return resolveFrom(cwd, args[i + 1] ?? '');
      if (a.startsWith('--output=')) return resolveFrom(cwd, a.slice('--output='.length));
      if (/^-[a-zA-Z]*o$/.test(a)) return resolveFrom(cwd, args[i + 1] ?? '');
      if (/^-[a-zA-Z]*O[a-zA-Z]*$/.test(a) || a === '--remote-name') return resolveFrom(cwd, name);
    }
    return 'stdout';
  }
  if (base === 'wget') {
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '-O' || /^-[a-zA-Z]*O$/.test(a))
        return args[i + 1] === '-' ? 'stdout' : resolveFrom(cwd, args[i + 1] ?? '');
      if (a.startsWith('--output-document='))
        return a.endsWith('=-') ? 'stdout' : resolveFrom(cwd, a.slice('--output-document='.length));
    }
    return resolveFrom(cwd, name);
  }
  return undefined;
}

function isUnpack(cmd: Command): boolean {
  const [prog, ...args] = cmd.words;
  if (path.posix.basename(prog ?? '') !== 'tar') return false;
  return args.some((a) => a === '--extract' || a === '--get' || /^-?[a-wyzA-Z]*x[a-zA-Z]*$/.test(a));
}

/** Whether `rm` here deletes `file` (itself, by a glob, or a directory above it with -r). */
function removes(cmd: Command, file: string, cwd: string | undefined): boolean {
  const [prog, ...args] = cmd.words;
  if (path.posix.basename(prog ?? '') !== 'rm') return false;
  const recursive = args.some((a) => /^-[a-zA-Z]*[rR]/.test(a) || a === '--recursive');
  return args
    .filter((a) => !a.startsWith('-'))
    .some((a) => {
      const target = resolveFrom(cwd, a);
      if (target === undefined) return false;
      const re = globToRegExp(target);
      if (re.test(file)) return true;
      if (!recursive) return false;
      for (let dir = path.posix.dirname(file); dir !== '/'; dir = path.posix.dirname(dir))
        if (re.test(dir)) return true;
      return false;
    });
}

interface Pending {
  fetch: Fetch;
  dest: string | 'stdout' | undefined;
  removed: boolean;
  /** Index of the command that unpacked it (the fetch itself when piped into tar). */
  unpackedAt?: number;
  cleanedAfterUnpack: boolean;
}

/**
 * Checks the fetches of a rendered Dockerfile against the variant's served
 * files. Refuses (exit 3) with one line naming the step and the file.
 */
export function checkFetches(dockerfile: ParsedDockerfile, served: ServedFile[], what: string): FetchReport {
  const byName = new Map(served.map((s) => [s.file, s]));
  const fetches: Fetch[] = [];
  const stages = new Map<string, Map<string, string>>();
  let env = new Map<string, string>();
  const refuse = (f: { step: number; line: number }, keyword: string, message: string): never => {
    throw new RefusedError('served-fetch', `${what}: step ${f.step} (${keyword} at line ${f.line}) ${message}`);
  };
  dockerfile.ast.getInstructions().forEach((ins, index) => {
    const step = { step: index + 1, line: ins.getRange().start.line + 1 };
    const keyword = ins.getKeyword();
    if (keyword === 'FROM') env = stageStart(stages, ins);
    if (keyword === 'ENV') {
      applyEnv(env, ins);
      return;
    }
    const content = ins.getArgumentsContent() ?? '';
    if (keyword === 'ADD' || keyword === 'COPY') {
      if (content.split(/\s+/).some((w) => SERVER_URL.test(expandVars(w.replace(/^["']|["']$/g, ''), env))))
        refuse(
          step,
          keyword,
          'fetches from the file server with ADD, which keeps the file in a layer: fetch it with curl in a RUN',
        );
      return;
    }
    if (keyword !== 'RUN') return;
    // The exec form (a JSON array) runs no shell: its words are the command.
    let text = content;
    if (/^\s*\[/.test(content)) {
      try {
        text = (JSON.parse(content) as string[]).map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(' ');
      } catch {
        // Not valid JSON: Docker runs it in a shell as written.
      }
    }
    const commands: Command[] = splitCommands(text).map((c) => ({
      raw: c.raw,
      words: c.raw.map((w) => expandVars(w, env)),
      pipesOut: c.pipesOut,
    }));
    const pending: Pending[] = [];
    let cwd: string | undefined = '/';
    commands.forEach((cmd, ci) => {
      const prog = cmd.words[0] ?? '';
      for (const word of cmd.words) {
        const m = SERVER_URL.exec(word);
        if (!m) continue;
        const file = decodeURIComponent(m[1].replace(/[?#].*$/, ''));
        if (file.includes('$'))
          refuse(
            step,
            keyword,
            `fetches ${word} from the file server: cannot tell which served file (only ENV values are expanded)`,
          );
        const decl = byName.get(file);
        if (!decl)
          refuse(
            step,
            keyword,
            `fetches ${file} from the file server, which has no role in the recipe's served: list (licensed or tool)`,
          );
        const fetch: Fetch = { ...step, file, role: decl!.role };
        fetches.push(fetch);
        const dest = destination(cmd, word, cwd);
        const piped = dest === 'stdout' && cmd.pipesOut && commands[ci + 1] !== undefined && isUnpack(commands[ci + 1]);
        pending.push({
          fetch,
          dest,
          removed: piped,
          unpackedAt: piped ? ci + 1 : undefined,
          cleanedAfterUnpack: false,
        });
      }
      if (prog === 'cd') cwd = resolveFrom(cwd, cmd.words[1] ?? '/');
      for (const p of pending) {
        if (p.dest === undefined || p.dest === 'stdout') continue;
        if (removes(cmd, p.dest, cwd)) p.removed = true;
        if (isUnpack(cmd) && cmd.words.some((w) => resolveFrom(cwd, w) === p.dest)) p.unpackedAt = ci;
      }
      if (cmd.raw.length === 1 && REMOVE_CRAY_DEPS.test(cmd.raw[0]))
        for (const p of pending) if (p.unpackedAt !== undefined && p.unpackedAt < ci) p.cleanedAfterUnpack = true;
    });
    for (const p of pending) {
      if (p.fetch.role !== 'licensed') continue;
      const { file } = p.fetch;
      if (p.dest === undefined)
        refuse(
          step,
          keyword,
          `fetches licensed ${file} and cannot tell where it is written (use curl -o PATH or wget -O PATH with a path the check can follow)`,
        );
      if (p.dest === 'stdout' && p.unpackedAt === undefined)
        refuse(
          step,
          keyword,
          `fetches licensed ${file} to standard output, which only a pipe into tar -x can take without a copy`,
        );
      if (!p.removed)
        refuse(
          step,
          keyword,
          `fetches licensed ${file} to ${p.dest} and does not remove it in the same RUN (rm ${p.dest} after it)`,
        );
      if (p.unpackedAt !== undefined && !p.cleanedAfterUnpack)
        refuse(step, keyword, `unpacks licensed ${file} and does not run $REMOVE_CRAY_DEPS after it in the same RUN`);
    }
  });
  const fetched = new Set(fetches.map((f) => f.file));
  return { fetches, unfetched: served.map((s) => s.file).filter((f) => !fetched.has(f)) };
}
