/**
 * The three readers that checked their documents by hand-written rules
 * (the leak scan's archive members, a pipeline's slurm: block, a recipe's
 * checks:) now check them by one schema each: hostile JSON — wrong types,
 * huge numbers, __proto__ keys, deep nesting — is one line naming the
 * file and the field, never a stack overflow, a silent default or a
 * value taken as it came.
 */
import { scanImageConfig } from '../../src/fileserver/leakscan';
import { parseSlurmSettings } from '../../src/pipeline/slurm-plan';
import { parseChecks } from '../../src/recipe/checks';
import { MAX_JSON_DEPTH } from '../../src/validate/schemas/docker';

/** The error's one line (or "no error"), for a table of cases. */
function refusal(f: () => unknown): string {
  try {
    f();
    return 'no error';
  } catch (e) {
    const m = (e as Error).message;
    expect(m).not.toContain('\n');
    return `${(e as { code?: string }).code}: ${m}`;
  }
}
const nested = (n: number) => '{"config":'.repeat(n) + '1' + '}'.repeat(n);

describe('an image archive member (the leak scan)', () => {
  const scan = (text: string) => () => scanImageConfig(text, { digests: new Map() }, 'image member c.json');
  it.each([
    [
      'deep nesting',
      nested(1_000_000),
      `bad-archive: image member c.json: config.config.config: expected a document nested no deeper than ${MAX_JSON_DEPTH} levels, found a mapping`,
    ],
    [
      'rootfs of the wrong type',
      '{"rootfs":[1]}',
      'bad-archive: image member c.json: rootfs: expected a mapping, found a list of 1',
    ],
    [
      'labels of the wrong type',
      '{"rootfs":{},"config":{"Labels":{"a":1}}}',
      'bad-archive: image member c.json: config.Labels.a: expected a string, found the number 1',
    ],
    ['not JSON', '{"rootfs":', expect.stringMatching(/^bad-archive: image member c\.json: not valid JSON: /)],
  ])('%s', (_what, text, told) => {
    expect(refusal(scan(text))).toEqual(told);
  });
  it('a config nested as deep as allowed is scanned, a __proto__ key as any other', () => {
    expect(refusal(scan(nested(MAX_JSON_DEPTH - 1)))).toBe('no error');
    const d = 'sha256:' + 'a'.repeat(64);
    expect(
      scanImageConfig(`{"config":{"Labels":{"__proto__":"${d}"}}}`, { digests: new Map([[d, 'x']]) }, 'c.json'),
    ).toEqual([{ layer: 'image config', path: 'config.Labels.__proto__', why: 'served digest' }]);
  });
});

describe("a pipeline's slurm: block", () => {
  it.each([
    [
      { convert: { cpus: '1e308' } },
      'bad-slurm: pipeline p: slurm.convert.cpus: expected a number, found the string "1e308"',
    ],
    [
      { convert: { cpus: 1e308 } },
      'bad-slurm: pipeline p: slurm.convert.cpus: expected a number <= 1024, found the number 1e+308',
    ],
    [
      { test: { time: ['30'] } },
      'bad-slurm: pipeline p: slurm.test.time: expected one of the forms this field takes, found a list of 1',
    ],
    [JSON.parse('{"__proto__":{"cpus":4}}'), 'bad-slurm: pipeline p: slurm: unknown key "__proto__"'],
    [
      JSON.parse('{"convert":{"__proto__":{"cpus":4}}}'),
      'bad-slurm: pipeline p: slurm.convert: unknown key "__proto__"',
    ],
    [
      { test: { sbatch: ['--x=$(id)'] } },
      'bad-slurm: pipeline p: slurm.test.sbatch[0]: expected one --long[=value] sbatch option, found the string "--x=$(id)"',
    ],
    [[{ convert: {} }], 'bad-slurm: pipeline p: slurm: expected a mapping, found a list of 1'],
  ])('%j', (raw, told) => {
    expect(refusal(() => parseSlurmSettings(raw, 'pipeline p'))).toBe(told);
  });
});

describe("a recipe's checks:", () => {
  it.each([
    [
      [{ name: 'x', command: 'c', ranks: '99999999999' }],
      'bad-check: recipe r: checks[0].ranks: expected a number, found the string "99999999999"',
    ],
    [
      [{ name: 'x', command: 'c', timeout: 1e308 }],
      'bad-check: recipe r: checks[0].timeout: expected a number <= 604800, found the number 1e+308',
    ],
    [[{ name: 'x', command: ['c'] }], 'bad-check: recipe r: checks[0].command: expected a string, found a list of 1'],
    [
      JSON.parse('[{"name":"x","command":"c","env":{"__proto__":"1"}}]'),
      'bad-check: recipe r: checks[0].env.__proto__: expected a key other than __proto__, found the string "1"',
    ],
    [
      JSON.parse('[{"name":"x","command":"c","__proto__":{}}]'),
      'bad-check: recipe r: checks[0]: unknown key "__proto__"',
    ],
    [
      [{ name: 'x', command: 'c', env: { A: { B: {} } } }],
      'bad-check: recipe r: checks[0].env.A: expected a string, found a mapping',
    ],
  ])('%j', (raw, told) => {
    expect(refusal(() => parseChecks(raw as unknown[], 'r'))).toBe(told);
  });
});
