import { InputError } from '../errors';
import type { ParamValues } from './types';

/**
 * Fragments use `{{ name }}` and `{{ name | filter }}`. Values were validated
 * before they get here, so substitution is plain text. The filters derive
 * the spellings LUMI's definitions need from one version number.
 */
const FILTERS: Record<string, (v: string) => string> = {
  // 6.2.0 -> 6.2
  majmin: (v) => v.split('.').slice(0, 2).join('.'),
  major: (v) => v.split('.')[0],
  // amdgpu-install directories drop a trailing ".0": 6.2.0 -> 6.2, 5.4.5 -> 5.4.5
  rocmdir: (v) => (/^\d+\.\d+\.0$/.test(v) ? v.replace(/\.0$/, '') : v),
  // ROCm's numeric release as in package names: 6.2.0 -> 60200, 5.4.5 -> 50405
  rocmnum: (v) => {
    const [a = '0', b = '0', c = '0'] = v.split('.');
    return `${Number(a)}${String(Number(b)).padStart(2, '0')}${String(Number(c)).padStart(2, '0')}`;
  },
  // SLES 15.5 -> SLE_15_SP5, as openSUSE's build service names repositories
  slesp: (v) => {
    const [major, sp = '0'] = v.split('.');
    return `SLE_${major}_SP${sp}`;
  },
  // 3.12 -> 312 (conda/pip tags)
  nodots: (v) => v.replace(/\./g, ''),
  // a list as a space-separated shell word list
  spaces: (v) => v.split(',').join(' '),
  // a list as semicolon-separated (CMake)
  semicolons: (v) => v.split(',').join(';'),
};

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_]+)\s*)?\}\}/g;

export function filterNames(): string[] {
  return Object.keys(FILTERS);
}

/** Substitutes placeholders; an unknown name or filter names the source. */
export function substitute(text: string, values: ParamValues, source: string): string {
  const out = text.replace(PLACEHOLDER, (_m, name: string, filter: string | undefined) => {
    if (!(name in values)) throw new InputError('bad-fragment', `${source}: unknown parameter {{ ${name} }}`);
    const value = values[name];
    if (filter === undefined) return value;
    const f = FILTERS[filter];
    if (!f) throw new InputError('bad-fragment', `${source}: unknown filter ${filter} (known: ${filterNames().join(', ')})`);
    return f(value);
  });
  const stray = out.indexOf('{{');
  if (stray >= 0) throw new InputError('bad-fragment', `${source}: malformed placeholder near ${JSON.stringify(out.slice(stray, stray + 30))}`);
  return out;
}
