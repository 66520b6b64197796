/**
 * Arbitrary strings for the emitters' property tests: any code point
 * (control characters included) mixed with the pieces attackers use
 * against each language. Seeded: SIFKIT_SEED, else a fresh one, printed.
 */
import fc from 'fast-check';
import { isSifkitError } from '../../src/errors';

const PIECES = [
  "'",
  '"',
  '`',
  '\\',
  '\n',
  '\r',
  '\0',
  '\u001b[31m',
  '\u0007',
  '$(',
  '${IFS}',
  ']==]',
  ']]',
  '[==[',
  '--[[',
  '%(version)s',
  '{name}',
  '{path}',
  '{{ root }}',
  '-->',
  '<!--',
  '<script>',
  '</p>',
  '&amp;',
  '&#0;',
  '|',
  '\t',
  '\u2028',
  '\u0085',
  '\u00a0',
  '\ufeff',
  '\ud83d\ude00',
  '"""',
  "'''",
  '\\x00',
  'EOF',
  '#SBATCH',
  ' ',
  '\f',
  '\v',
  // Lua long brackets of every level, opening and closing.
  ']=]',
  ']===]',
  ']====]',
  '[=[',
  '[===[',
  // Python: a named escape, an f-string brace, a raw-string prefix.
  '\\N{LATIN SMALL LETTER A}',
  '{0}',
  "r'",
  // bash: ANSI-C quoting, substitutions inside double quotes, a here-doc.
  "$'\\n'",
  '"$(id)"',
  '`id`',
  '<<EOF',
  "<<'EOF'",
  '$((1))',
  '!!',
  // Unicode that breaks lines, hides or reorders text, or is not text at all.
  '\u2029',
  '\u202e',
  '\u202d',
  '\u200f',
  '\u2066',
  '\u2069',
  '\u061c',
  '\ud800',
  '\udfff',
  '\ufffe',
  // Markdown and HTML: links, raw HTML, fences, table cells.
  '</script>',
  '[x](javascript:alert(1))',
  '<img src=x onerror=alert(1)>',
  '~~~',
  '```',
  '| --- |',
  '&#x3c;',
  // Names that collide after case folding or normalization.
  '\u212a',
  '\u017f',
  '\ufb01',
  'e\u0301',
];

/**
 * The grammar of dangerous pieces of the emitters' generative check
 * (test/unit/emit-property.test.ts), by class, so a failure names what
 * it is made of. Beyond PIECES: every kind of line break (CRLF, NEL, the
 * Unicode separators), C1 controls (U+009B is an 8-bit CSI), zero-width
 * and invisible tag characters, combining marks on quotes, noncharacters,
 * HTML's other comment ends, XML's attribute white space, Dockerfile
 * directives and heredocs, Lua and Python escape texts, and long runs of
 * each dangerous piece.
 */
export const PIECE_CLASSES: Record<string, readonly string[]> = {
  quotes: ["'", '"', '`', '"""', "'''", '\u2018', '\u201c', '\uff02'],
  backslashes: [
    '\\',
    '\\\\',
    '\\"',
    "\\'",
    '\\n',
    '\\0',
    '\\x41',
    '\\u0041',
    '\\z',
    '\\u{41}',
    '\\N{DIGIT ONE}',
    '\\\n',
  ],
  dollar: ['$', '${', '${x}', '$(id)', '$((1+1))', '$$', '${a:-b}', "$'\\x41'", '$"x"', '$IFS'],
  backticks: ['`id`', '``', '```', '~~~'],
  percent: ['%', '%s', '%(name)s', '%%', '%d', '%1', '%0A'],
  braces: ['{}', '{', '}', '{v}', '{n}', '{path}', '{{ a }}', '{{', '}}', '{0}', '{{!}}'],
  brackets: [']]', ']=]', ']==]', '[[', '[=[', '--[[', '--]]', ']]>', '<![CDATA['],
  newlines: ['\n', '\r', '\r\n', '\u2028', '\u2029', '\u0085', '\v', '\f', '\n\n', '\r\r'],
  nul: ['\0', '\0\0'],
  controls: [
    '\u0001',
    '\u0007',
    '\u0008',
    '\u001b',
    '\u001b[2J',
    '\u001b]0;x\u0007',
    '\u007f',
    '\u0080',
    '\u009b',
    '\u009b2J',
    '\u009d',
    '\u008d',
  ],
  bidi: [
    '\u202a',
    '\u202b',
    '\u202c',
    '\u202d',
    '\u202e',
    '\u2066',
    '\u2067',
    '\u2068',
    '\u2069',
    '\u200e',
    '\u200f',
    '\u061c',
  ],
  surrogates: ['\ud800', '\udbff', '\udc00', '\udfff', '\ud83d\ude00', '\udfff\ud800'],
  combining: ['\u0301', '\u0336', '\u20dd', '"\u0338', "'\u0301", '`\u0300', '\ufe0f', '\u200d', '\u034f'],
  invisible: ['\u200b', '\u2060', '\ufeff', '\u00ad', '\u{e0041}', '\u{e007f}', '\u3164', '\u115f'],
  noncharacters: ['\ufffe', '\uffff', '\ufdd0', '\u{1fffe}', '\u{10ffff}', '\ue000'],
  spaces: [' ', '\t', '\u00a0', '\u2003', '\u3000', '  ', ' \t '],
  markup: [
    '<',
    '>',
    '&',
    '&amp;',
    '&#0;',
    '&#x3c;',
    '&lt',
    '<!--',
    '-->',
    '--!>',
    '<!-->',
    '<script>',
    '</textarea>',
    '<plaintext>',
    '[x](javascript:x)',
    '<http://x>',
    '| x |',
    '*',
    '_',
    '#',
    '> ',
    '- ',
    '1. ',
    '===',
  ],
  dockerfile: ['# escape=`', '# syntax=x', '<<EOF', '\\\nRUN id', 'ONBUILD', '=', ' RUN id'],
  shell: [
    '<(',
    '>(x',
    ';',
    '&&',
    '||',
    '|',
    '>x',
    '<x',
    '(',
    ')',
    '!',
    '#',
    '~',
    '*',
    '?',
    '[a]',
    '-',
    '--x',
    '-n',
    '-e',
  ],
  plain: ['a', 'x', '1.2.3', 'mpi4py', '/opt/x', 'Z', '\u00e9', '\u4e2d', '\u{1f600}'],
};

export const hostileString: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { arbitrary: fc.string({ unit: 'binary', maxLength: 8 }), weight: 2000 },
      { arbitrary: fc.constantFrom(...PIECES), weight: 2000 },
      // The classes of the generative check too.
      { arbitrary: fc.constantFrom(...Object.values(PIECE_CLASSES).flat()), weight: 1000 },
      { arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 6 }), weight: 2000 },
      // A very long value now and then (about one value in a thousand), kept rare so 10,000 runs stay cheap.
      { arbitrary: fc.constant('A'.repeat(4000)), weight: 1 },
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(''));

/** The seed of this run, printed so a failure can be replayed with SIFKIT_SEED. */
export function seedOfRun(name: string): number {
  const seed = Number(process.env.SIFKIT_SEED ?? Date.now() % 2 ** 31);

  console.log(`${name}: seed ${seed} (replay with SIFKIT_SEED=${seed})`);
  return seed;
}

/** A UTF-16 half with no partner: no UTF-8 form, so no file can hold it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * 10,000 seeded values, split into those the emitter takes and those it
 * refuses; every refusal must be a one-line InputError (exit 2). A value
 * with a lone surrogate must be refused by every emitter: it is checked
 * here and left out of `refused`, which lists each language's own refusals.
 */
export function sampleFor(
  emit: (v: string) => string,
  seed: number,
  n = 10_000,
): { taken: Array<[string, string]>; refused: string[] } {
  const taken: Array<[string, string]> = [];
  const refused: string[] = [];
  for (const v of fc.sample(hostileString, { numRuns: n, seed })) {
    let out: string | undefined;
    try {
      out = emit(v);
    } catch (e) {
      if (!isSifkitError(e) || e.exitCode !== 2 || /\n/.test(e.message)) throw e;
    }
    if (LONE_SURROGATE.test(v)) {
      if (out !== undefined) throw new Error(`took a lone surrogate: ${JSON.stringify(v)} -> ${JSON.stringify(out)}`);
    } else if (out === undefined) refused.push(v);
    else taken.push([v, out]);
  }
  return { taken, refused };
}

/** Long runs of a dangerous piece (the emitters' loops, the parsers' limits), drawn now and then. */
const LONG_RUN_PIECES = ['\\', '$', '`', "'", '"', '%', ']', '\u0301', '\u202e', '\ud83d\ude00', 'A', '&', '{'];

/** A small seeded PRNG (mulberry32): the same seed draws the same values on every machine. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Every piece of PIECE_CLASSES on its own, then `mixes` seeded values of
 * 1 to 8 pieces from random classes, one in twenty with a long run (up to
 * 5,000 repeats) of a dangerous piece.
 */
export function grammarValues(seed: number, mixes: number): string[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const classes = Object.values(PIECE_CLASSES);
  const values = classes.flat();
  for (let i = 0; i < mixes; i++) {
    const parts: string[] = [];
    const n = 1 + Math.floor(rand() * 8);
    for (let k = 0; k < n; k++) parts.push(pick(pick(classes)));
    if (rand() < 0.05)
      parts.splice(Math.floor(rand() * parts.length), 0, pick(LONG_RUN_PIECES).repeat(1 + Math.floor(rand() * 5000)));
    values.push(parts.join(''));
  }
  return values;
}

/** Values a Lua chunk wrote back as `io.write(#v, ":", v)`, one after another (Lua strings hold NUL too). */
export function lengthPrefixed(out: Buffer): string[] {
  const back: string[] = [];
  for (let at = 0; at < out.length;) {
    const colon = out.indexOf(0x3a, at);
    const n = Number(out.subarray(at, colon).toString());
    back.push(out.subarray(colon + 1, colon + 1 + n).toString('utf8'));
    at = colon + 1 + n;
  }
  return back;
}
