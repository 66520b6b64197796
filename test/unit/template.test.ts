import { InputError } from '../../src/errors';
import { compareVersions, substitute } from '../../src/recipe/template';

describe('{{ if }} blocks in fragments', () => {
  const text = [
    'A',
    '{{ if rocm >= 6 }}',
    'six {{ rocm }}',
    '{{ if rocm < 6.2 }}',
    'before 6.2',
    '{{ end }}',
    '{{ else }}',
    'five',
    '{{ end }}',
    'Z',
  ].join('\n');
  it.each([
    ['5.4.5', 'A\nfive\nZ'],
    ['6.0.3', 'A\nsix 6.0.3\nbefore 6.2\nZ'],
    ['6.2.0', 'A\nsix 6.2.0\nZ'],
  ])('keeps the lines whose conditions hold for rocm=%s', (rocm, out) => {
    expect(substitute(text, { rocm }, 'f')).toBe(out);
  });
  it('compares versions numerically, missing parts as 0', () => {
    expect(compareVersions('6.10.0', '6.9')).toBe(1);
    expect(compareVersions('6', '6.0.0')).toBe(0);
    expect(compareVersions('5.7.3', '5.7')).toBe(1);
    expect(compareVersions('15.4.27.14.99', '15.5')).toBe(-1);
  });
  it.each([
    ['{{ if nope >= 6 }}\nx\n{{ end }}', /f line 1: unknown parameter nope/],
    ['{{ else }}', /f line 1: \{\{ else \}\} without \{\{ if \}\}/],
    ['{{ end }}', /without \{\{ if \}\}/],
    ['{{ if rocm >= 6 }}\nx', /the \{\{ if \}\} of line 1 has no \{\{ end \}\}/],
    ['{{ if rocm >= 6 }}\n{{ else }}\n{{ else }}\n{{ end }}', /a second \{\{ else \}\}/],
    ['x {{ if rocm >= 6 }}', /malformed placeholder/],
    ['{{ if name >= 6 }}\n{{ end }}', /name="mpi4py" is not a version/],
  ])('refuses a malformed block: %j', (t, msg) => {
    expect(() => substitute(t, { rocm: '6.2.0', name: 'mpi4py' }, 'f')).toThrow(InputError);
    expect(() => substitute(t, { rocm: '6.2.0', name: 'mpi4py' }, 'f')).toThrow(msg);
  });
});
