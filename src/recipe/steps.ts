/**
 * A rendered definition as the build steps an engine's layer cache sees,
 * each with a key that is equal for two variants exactly when the cache
 * would take one for the other: the instruction's text, what a `COPY` or
 * `ADD` copies (two identical lines copying different content are not one
 * step), and the value of a per-build `ARG`. Keys chain: a step's key
 * covers every step before it, as the cache's does. Pure.
 */
import { createHash } from 'node:crypto';

export interface BuildStep {
  /** 1-based line of the instruction in the definition. */
  line: number;
  /** FROM, RUN, COPY... */
  instruction: string;
  /** The instruction as written, continuation lines joined. */
  text: string;
  /** sha256 over this step and every one before it. */
  key: string;
}

export interface StepInputs {
  /** Digests of the build-context files by relative path (RecipeInputs.files). */
  files: Readonly<Record<string, string>>;
  /**
   * What each per-build ARG stands for in this variant (e.g. the served
   * files behind SERVED_DIGEST); an ARG not named here keys by its text.
   */
  args?: Readonly<Record<string, string>>;
}

/** The instructions of a Dockerfile: comments and blank lines dropped, continuation lines joined. */
export function instructions(dockerfile: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let current: { line: number; parts: string[] } | undefined;
  dockerfile.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    // A comment line inside a continued instruction is dropped, as Docker's parser does.
    if (/^\s*#/.test(line) || (!current && !line.trim())) return;
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1) : line;
    if (current) current.parts.push(part.trim());
    else current = { line: i + 1, parts: [part.trim()] };
    if (!continued) {
      out.push({ line: current.line, text: current.parts.filter(Boolean).join(' ') });
      current = undefined;
    }
  });
  if (current) out.push({ line: current.line, text: current.parts.filter(Boolean).join(' ') });
  return out;
}

/** A COPY/ADD source pattern as a test on context paths (`*`, `?` within a segment; a directory copies what is under it). */
function sourceMatcher(src: string): (rel: string) => boolean {
  const clean = src.replace(/^\.\//, '').replace(/\/+$/, '');
  if (clean === '' || clean === '.') return () => true;
  const re = new RegExp(
    '^' +
      clean
        .split('')
        .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('') +
      '(/.*)?$',
  );
  return (rel) => re.test(rel);
}

/** The context files a COPY/ADD line reads, as `path digest` lines in path order. */
function copiedContent(text: string, files: Readonly<Record<string, string>>): string {
  const words = text.split(/\s+/).slice(1);
  // --from copies out of another stage or image, not the context: its text says it all.
  if (words.some((w) => w.startsWith('--from='))) return '';
  const paths = words.filter((w) => !w.startsWith('--'));
  const sources = paths.slice(0, -1).map(sourceMatcher);
  return Object.keys(files)
    .filter((rel) => sources.some((m) => m(rel)))
    .sort()
    .map((rel) => `${rel} ${files[rel]}`)
    .join('\n');
}

/** The definition's steps with their chained cache keys. */
export function buildSteps(dockerfile: string, inputs: StepInputs): BuildStep[] {
  let parent = '';
  return instructions(dockerfile).map(({ line, text }) => {
    const instruction = text.split(/\s+/)[0].toUpperCase();
    let extra = '';
    if (instruction === 'COPY' || instruction === 'ADD') extra = copiedContent(text, inputs.files);
    if (instruction === 'ARG') {
      const name = text.split(/\s+/)[1]?.split('=')[0] ?? '';
      extra = inputs.args?.[name] ?? '';
    }
    const h = createHash('sha256');
    for (const s of [parent, text, extra]) h.update(`${Buffer.byteLength(s)}:${s}`);
    parent = h.digest('hex');
    return { line, instruction, text, key: parent };
  });
}
