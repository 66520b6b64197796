import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { checkName, escapeForMessage, isValidName } from '../../src/validate/names';
import { joinInside, targetInside } from '../../src/validate/paths';

describe('the name rule', () => {
  it('accepts the names LUMI uses', () => {
    expect(isValidName('stem', 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6')).toBe(true);
    expect(isValidName('stem', 'lumi-pytorch-rocm-6.2.4-python-3.12-pytorch-v2.7.1')).toBe(true);
    expect(isValidName('dockerhash', 'f049c8bd4669')).toBe(true);
    expect(isValidName('tag', 'lumi/lumi-mpi4py:rocm-6.2.0-python-3.12-mpi4py-3.1.6')).toBe(true);
    expect(isValidName('easyconfig', 'mpi4py-3.1.6-rocm-6.2.0-python-3.12-singularity-20241007.eb')).toBe(true);
    expect(isValidName('module', 'mpi4py/3.1.6-rocm-6.2.0-python-3.12-singularity-20241007')).toBe(true);
    expect(isValidName('sif file', 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6-dockerhash-f049c8bd4669.sif')).toBe(
      true,
    );
  });

  it.each([
    ['stem', '../x'],
    ['stem', 'a/b'],
    ['stem', '..'],
    ['stem', '.hidden'],
    ['stem', 'a..b'],
    ['stem', ''],
    ['stem', 'x\ny'],
    ['dockerhash', '../../etc0'],
    ['dockerhash', 'F049C8BD4669'],
    ['recipe', '/etc/passwd'],
    ['recipe', '../mpi4py'],
    ['module', 'a/../b'],
    ['tag', 'Lumi/x'],
    ['easyconfig', 'x.eb/..'],
  ] as const)('refuses %s %j', (kind, value) => {
    expect(isValidName(kind, value)).toBe(false);
    expect(() => checkName(kind, value, 'label io.sifkit.x')).toThrow(/^label io\.sifkit\.x: /);
  });

  it('refuses non-strings and over-long names', () => {
    expect(isValidName('stem', 42)).toBe(false);
    expect(isValidName('stem', 'a'.repeat(161))).toBe(false);
    expect(() => checkName('stem', null, 'src')).toThrow('is a null');
  });

  it('messages stay on one printable line whatever the value', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        const shown = escapeForMessage(s);
        expect(shown).toMatch(/^[\x20-\x7e]*$/);
        try {
          checkName('stem', s, 'label io.sifkit.stem');
        } catch (e) {
          expect((e as Error).message).toMatch(/^[\x20-\x7e]*$/);
        }
      }),
      { seed: 15, numRuns: 500 },
    );
  });
});

describe('targets inside a directory', () => {
  it('refuses lexical escapes', () => {
    expect(() => joinInside('/r', '../x')).toThrow(/outside/);
    expect(() => joinInside('/r', 'a/../../x')).toThrow(/outside/);
    expect(() => joinInside('/r', '')).toThrow(/outside/);
    expect(joinInside('/r', 'a', 'b')).toBe('/r/a/b');
  });

  it('refuses a path through a planted link', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifkit-inside-'));
    try {
      fs.mkdirSync(path.join(dir, 'root'));
      fs.symlinkSync(os.tmpdir(), path.join(dir, 'root', 'out'));
      await expect(targetInside(path.join(dir, 'root'), 'out', 'x.sif')).rejects.toThrow(/outside/);
      await expect(targetInside(path.join(dir, 'root'), 'new', 'x.sif')).resolves.toBe(
        path.join(dir, 'root', 'new', 'x.sif'),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('image references (what an engine is asked about)', () => {
  it('takes references with a registry and port, a tag, a digest, and image IDs', () => {
    for (const ref of [
      'busybox',
      'lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4-conda-mpi4py',
      'localhost:5000/a/b__c:1.0',
      'Registry.Example.com/x/y@sha256:' + 'a'.repeat(64),
      'sha256:' + 'f'.repeat(64),
      'de214a6d2ab2',
    ])
      expect(isValidName('image reference', ref)).toBe(true);
  });
  it('refuses what would leave or change the Engine API path', () => {
    for (const ref of ['../../x', '/images', 'a/../b', 'a\nb', 'a b', 'a?x=1', 'a#b', 'A/B', '', 'a//b', 'a:b:c'])
      expect(isValidName('image reference', ref)).toBe(false);
    expect(() => checkName('image reference', '../../x', 'the image engine')).toThrow(
      /^the image engine: image reference "..\/..\/x" is not allowed/,
    );
  });
});
