/**
 * The build steps read from the render's one parse (recipe/steps.ts) keep
 * every cache key byte for byte: over the whole mpi4py and mpi4py-cpu
 * matrices, the instructions the parse gives (line, keyword, text: all a
 * key is computed from) are those the text splitting gave before it, here
 * as the reference.
 */
import { renderMatrix } from '../support/recipes';
import { parseDockerfile } from '../../src/recipe/parsed-dockerfile';
import { buildSteps, instructions } from '../../src/recipe/steps';

/** The text splitting recipe/steps.ts used before (at 4d60aa7), kept as the reference. */
function textInstructions(dockerfile: string): Array<{ line: number; instruction: string; text: string }> {
  const out: Array<{ line: number; instruction: string; text: string }> = [];
  let current: { line: number; parts: string[] } | undefined;
  const push = (c: { line: number; parts: string[] }) => {
    const text = c.parts.filter(Boolean).join(' ');
    out.push({ line: c.line, instruction: text.split(/\s+/)[0].toUpperCase(), text });
  };
  dockerfile.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) || (!current && !line.trim())) return;
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1) : line;
    if (current) current.parts.push(part.trim());
    else current = { line: i + 1, parts: [part.trim()] };
    if (!continued) {
      push(current);
      current = undefined;
    }
  });
  if (current) push(current);
  return out;
}

describe('build steps from the parse', () => {
  it.each(['mpi4py', 'mpi4py-cpu'])(
    'gives the %s matrix the instructions, and so the keys, of the text splitting',
    async (name) => {
      const matrix = await renderMatrix(name);
      expect(matrix.length).toBeGreaterThan(1);
      for (const r of matrix) {
        expect(instructions(r.parsed)).toEqual(textInstructions(r.dockerfile));
        expect(buildSteps(r.parsed).map((s) => s.text)).toEqual(textInstructions(r.dockerfile).map((i) => i.text));
      }
    },
  );

  it('keeps an instruction flag and the spaces inside a line, which the parser leaves out of its argument text', () => {
    const parsed = parseDockerfile('FROM x AS b\nCOPY --from=b  /a  /c\nRUN echo "a  b" \\\n   c\n');
    expect(instructions(parsed).map((i) => i.text)).toEqual([
      'FROM x AS b',
      'COPY --from=b  /a  /c',
      'RUN echo "a  b" c',
    ]);
  });
});
