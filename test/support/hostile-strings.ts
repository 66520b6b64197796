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
];

export const hostileString: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.constantFrom(...PIECES),
      fc.string({ unit: 'grapheme-ascii', maxLength: 6 }),
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

/**
 * 10,000 seeded values, split into those the emitter takes and those it
 * refuses; every refusal must be a one-line InputError (exit 2).
 */
export function sampleFor(
  emit: (v: string) => string,
  seed: number,
  n = 10_000,
): { taken: Array<[string, string]>; refused: string[] } {
  const taken: Array<[string, string]> = [];
  const refused: string[] = [];
  for (const v of fc.sample(hostileString, { numRuns: n, seed })) {
    try {
      taken.push([v, emit(v)]);
    } catch (e) {
      if (!isSifkitError(e) || e.exitCode !== 2 || /\n/.test(e.message)) throw e;
      refused.push(v);
    }
  }
  return { taken, refused };
}
