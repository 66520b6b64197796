/**
 * A rendered definition as the build steps an engine's layer cache sees,
 * each with a key that is equal for two variants exactly when the cache
 * would take one for the other. The one home of "is this the same build
 * step": the build plan, `release --dry-run` and the benches all key here.
 *
 * A step's key covers the instruction's text and everything it builds on:
 * the steps before it in its stage, and, through `FROM STAGE` and
 * `COPY --from=STAGE`, the stages it starts from or copies out of (each
 * with what they build on in turn), so a component built in its own stage
 * from the part it needs (OSU from ROCm) has one key per distinct input
 * set, however many variants copy it in. A `COPY`/`ADD` from the build
 * context is keyed by the content it copies (two identical lines copying
 * different files are not one step), and a per-build `ARG` by what it
 * stands for in this variant. Pure.
 */
import { createHash } from 'node:crypto';
import type { ParsedDockerfile } from './parsed-dockerfile';

export interface BuildStep {
  /** 1-based line of the instruction in the definition. */
  line: number;
  /** FROM, RUN, COPY... */
  instruction: string;
  /** The instruction as written, continuation lines joined. */
  text: string;
  /** 0-based stage (FROM) it belongs to. */
  stage: number;
  /** A FROM of an earlier stage: that stage (what an image of this stage holds below it). */
  from?: number;
  /** sha256 over this step and every step it builds on. */
  key: string;
}

export interface StepInputs {
  /** Digests of the build-context files by relative path (RecipeInputs.files); none: a COPY keys by its text. */
  files?: Readonly<Record<string, string>>;
  /**
   * What each per-build ARG stands for in this variant (e.g. the served
   * files behind SERVED_DIGEST); an ARG not named here keys by its text.
   */
  args?: Readonly<Record<string, string>>;
}

/**
 * The instructions of the render's one parse, in order: which lines make
 * one instruction and its keyword are the parser's (dockerfile-ast, as
 * Docker reads them). Its text is taken from those lines as the keys have
 * always hashed it: comment lines inside it dropped, each line trimmed and
 * its continuation mark removed, joined by one space. The parser's own
 * argument text would not do: it leaves out an instruction's flags
 * (`COPY --from=…`) and folds the spaces inside a line, changing keys.
 */
export function instructions(parsed: ParsedDockerfile): Array<{ line: number; instruction: string; text: string }> {
  const lines = parsed.text.split('\n');
  const escape = parsed.ast.getEscapeCharacter();
  return parsed.ast.getInstructions().map((ins) => {
    const { start, end } = ins.getRange();
    const parts = lines
      .slice(start.line, end.line + 1)
      .map((raw) => raw.trimEnd())
      .filter((l) => !/^\s*#/.test(l))
      .map((l) => (l.endsWith(escape) ? l.slice(0, -1) : l).trim());
    return { line: start.line + 1, instruction: ins.getKeyword(), text: parts.filter(Boolean).join(' ') };
  });
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

/** The context files a COPY/ADD (not --from) reads, as `path digest` lines in path order. */
function copiedContent(words: string[], files: Readonly<Record<string, string>>): string {
  const paths = words.slice(1).filter((w) => !w.startsWith('--'));
  const sources = paths.slice(0, -1).map(sourceMatcher);
  return Object.keys(files)
    .filter((rel) => sources.some((m) => m(rel)))
    .sort()
    .map((rel) => `${rel} ${files[rel]}`)
    .join('\n');
}

function digest(...parts: string[]): string {
  const h = createHash('sha256');
  for (const s of parts) h.update(`${Buffer.byteLength(s)}:${s}`);
  return h.digest('hex');
}

/** The value of a `--name=value` flag among an instruction's words. */
function flag(words: string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return words.find((w) => w.toLowerCase().startsWith(prefix))?.slice(prefix.length);
}

/** The definition's steps with their cache keys, in order. */
export function buildSteps(parsed: ParsedDockerfile, inputs: StepInputs = {}): BuildStep[] {
  const stageKeys: string[] = [];
  const stageNames = new Map<string, number>();
  // A stage named earlier is built on or copied from; any other reference is an image, keyed by its name.
  const stageKey = (ref: string): string | undefined => {
    const byName = stageNames.get(ref.toLowerCase());
    if (byName !== undefined) return stageKeys[byName];
    return /^\d+$/.test(ref) ? stageKeys[Number(ref)] : undefined;
  };
  const stageIndex = (ref: string): number | undefined =>
    stageNames.get(ref.toLowerCase()) ?? (/^\d+$/.test(ref) ? Number(ref) : undefined);
  let stage = -1;
  let key = '';
  let from: number | undefined;
  return instructions(parsed).map(({ line, instruction, text }) => {
    const words = text.split(/\s+/);
    if (instruction === 'FROM') {
      stage += 1;
      // FROM [--platform=…] IMAGE [AS NAME]
      const plain = words.slice(1).filter((w) => !w.startsWith('--'));
      // What it starts from, whatever this stage is named: a stage by its key, an image by its reference
      // (and platform). Not the stage's own key: a FROM makes no layer, and is no step of the one it names.
      const base = stageKey(plain[0] ?? '');
      key =
        base === undefined
          ? digest('FROM image', plain[0] ?? '', flag(words, 'platform') ?? '')
          : digest('FROM stage', base);
      from = base === undefined ? undefined : stageIndex(plain[0] ?? '');
      if (plain.length >= 3 && plain[1].toLowerCase() === 'as') stageNames.set(plain[2].toLowerCase(), stage);
    } else {
      from = undefined;
      let extra = '';
      if (instruction === 'COPY' || instruction === 'ADD') {
        const from = flag(words, 'from');
        if (from !== undefined) extra = stageKey(from) ?? `image ${from}`;
        else extra = copiedContent(words, inputs.files ?? {});
      }
      if (instruction === 'ARG') extra = inputs.args?.[words[1]?.split('=')[0] ?? ''] ?? '';
      key = digest(key, text, extra);
    }
    stageKeys[Math.max(stage, 0)] = key;
    return { line, instruction, text, stage: Math.max(stage, 0), key, ...(from !== undefined && { from }) };
  });
}

/**
 * The keys of the steps an image of this definition holds in its own
 * history: its last stage's and those of the stages it starts FROM, in
 * turn; not the stages it only copies from (their layers are not its). An
 * engine given the image as a build cache (`cachefrom`) can take exactly
 * these steps from it.
 */
export function imageLineage(steps: readonly BuildStep[]): Set<string> {
  const chain = new Set<number>();
  for (let s: number | undefined = steps.at(-1)?.stage; s !== undefined && !chain.has(s);) {
    chain.add(s);
    s = steps.find((x) => x.stage === s && x.instruction === 'FROM')?.from;
  }
  return new Set(steps.filter((x) => chain.has(x.stage)).map((x) => x.key));
}

export interface StepCount {
  /** Definitions counted (variants). */
  definitions: number;
  /** RUN steps rendered, summed over the definitions. */
  runSteps: number;
  /** Distinct RUN steps: the ones a shared cache would run. */
  distinctRunSteps: number;
}

/** The RUN steps of many definitions' steps, and how many are distinct work. */
export function countRunSteps(definitions: ReadonlyArray<readonly BuildStep[]>): StepCount {
  const runs = definitions.flatMap((steps) => steps.filter((s) => s.instruction === 'RUN'));
  return {
    definitions: definitions.length,
    runSteps: runs.length,
    distinctRunSteps: new Set(runs.map((s) => s.key)).size,
  };
}
