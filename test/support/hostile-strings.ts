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

export const hostileString: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { arbitrary: fc.string({ unit: 'binary', maxLength: 8 }), weight: 2000 },
      { arbitrary: fc.constantFrom(...PIECES), weight: 2000 },
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
