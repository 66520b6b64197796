import { InputError } from '../errors';
import type { ParamValues } from './types';

/**
 * Fragments use `{{ name }}` and `{{ name | filter }}`. Values were validated
 * before they get here, so substitution is plain text. The filters derive
 * the spellings LUMI's definitions need from one version number.
 *
 * A fragment may also keep lines for some versions only, because one recipe
 * renders ROCm 5.x images as LUMI built them and ROCm 6.x images as AMD's
 * newer recipes do. A directive stands alone on its line:
 *   {{ if rocm >= 6 }} ... {{ else }} ... {{ end }}
 * with `>=`, `<`, `==` or `!=` against a dotted version; blocks may nest.
 * A parameter that names a platform rather than a version is compared as
 * a word, with `==` or `!=` only: {{ if target == lumi-g }}. That is how
 * one fragment serves LUMI's image and the CPU example.
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

/** `{{ source "NAME" "PATH" }}` (rendered by recipe/sources.ts). */
const SOURCE_REF = /\{\{\s*source\s+"([^"]*)"\s+"([^"]*)"\s*\}\}/g;

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_]+)\s*)?\}\}/g;

export function filterNames(): string[] {
  return Object.keys(FILTERS);
}

const DIRECTIVE =
  /^\s*\{\{\s*(?:if\s+([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<|==|!=)\s*(\d+(?:\.\d+)*|[a-z][a-z0-9_-]*)|(else)|(end))\s*\}\}\s*$/;
const CONDITION = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<|==|!=)\s*(\d+(?:\.\d+)*|[a-z][a-z0-9_-]*)\s*$/;

/** Compares dotted versions numerically; missing parts count as 0 (6 == 6.0.0). */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

function holds(value: string, op: string, ref: string): boolean {
  const c = compareVersions(value, ref);
  return op === '>=' ? c >= 0 : op === '<' ? c < 0 : op === '==' ? c === 0 : c !== 0;
}

/** Whether `name op ref` holds for the values; `where` names the source in a one-line error. */
function evaluate(name: string, op: string, ref: string, values: ParamValues, where: string): boolean {
  if (!(name in values)) throw new InputError('bad-fragment', `${where}: unknown parameter ${name} in a condition`);
  if (!/^\d/.test(ref)) {
    if (op !== '==' && op !== '!=')
      throw new InputError('bad-fragment', `${where}: ${name} ${op} ${ref}: a word is compared with == or != only`);
    return (values[name] === ref) === (op === '==');
  }
  if (!/^\d+(\.\d+)*/.test(values[name]))
    throw new InputError(
      'bad-fragment',
      `${where}: ${name}=${JSON.stringify(values[name])} is not a version to compare`,
    );
  return holds(values[name].replace(/^(\d+(?:\.\d+)*).*$/, '$1'), op, ref);
}

/** A condition written outside a fragment (a served file's `when`), as in `{{ if ... }}`. */
export function conditionHolds(condition: string, values: ParamValues, where: string): boolean {
  const m = CONDITION.exec(condition);
  if (!m)
    throw new InputError(
      'bad-recipe',
      `${where}: expected a condition like rocm >= 6, found ${JSON.stringify(condition)}`,
    );
  return evaluate(m[1], m[2], m[3], values, where);
}

/**
 * The (0-based) numbers of the lines whose conditions hold; directive lines
 * themselves are dropped. Tells which of a fragment's lines a variant runs.
 */
export function keptLines(text: string, values: ParamValues, source: string): number[] {
  const frames: Array<{ cond: boolean; inElse: boolean; line: number }> = [];
  const active = () => frames.every((f) => (f.inElse ? !f.cond : f.cond));
  const out: number[] = [];
  text.split('\n').forEach((line, i) => {
    const m = DIRECTIVE.exec(line);
    if (!m) {
      if (active()) out.push(i);
      return;
    }
    const [, name, op, ref, isElse, isEnd] = m;
    const where = `${source} line ${i + 1}`;
    if (name !== undefined) {
      // Inside a block that is not kept, a condition may name a parameter
      // only the other target has (bci under target == lumi-g): not asked.
      frames.push({ cond: active() ? evaluate(name, op, ref, values, where) : false, inElse: false, line: i + 1 });
    } else {
      const top = frames[frames.length - 1];
      if (!top) throw new InputError('bad-fragment', `${where}: {{ ${isElse ?? isEnd} }} without {{ if }}`);
      if (isElse !== undefined) {
        if (top.inElse)
          throw new InputError('bad-fragment', `${where}: a second {{ else }} for the {{ if }} of line ${top.line}`);
        top.inElse = true;
      } else frames.pop();
    }
  });
  const open = frames[frames.length - 1];
  if (open) throw new InputError('bad-fragment', `${source}: the {{ if }} of line ${open.line} has no {{ end }}`);
  return out;
}

/** Keeps the lines whose conditions hold; directive lines themselves are dropped. */
export function selectLines(text: string, values: ParamValues, source: string): string {
  const lines = text.split('\n');
  return keptLines(text, values, source)
    .map((i) => lines[i])
    .join('\n');
}

/**
 * Selects conditional lines, then substitutes placeholders; an unknown name
 * or filter names the source. `sourceRef`, when given, renders each
 * `{{ source "NAME" "PATH" }}` (recipe/sources.ts) before the placeholders.
 */
export function substitute(
  text: string,
  values: ParamValues,
  source: string,
  sourceRef?: (name: string, dest: string) => string,
): string {
  const selected = selectLines(text, values, source);
  const withSources = sourceRef
    ? selected.replace(SOURCE_REF, (_m, name: string, dest: string) => sourceRef(name, dest))
    : selected;
  const out = withSources.replace(PLACEHOLDER, (_m, name: string, filter: string | undefined) => {
    if (!(name in values)) throw new InputError('bad-fragment', `${source}: unknown parameter {{ ${name} }}`);
    const value = values[name];
    if (filter === undefined) return value;
    const f = FILTERS[filter];
    if (!f)
      throw new InputError('bad-fragment', `${source}: unknown filter ${filter} (known: ${filterNames().join(', ')})`);
    return f(value);
  });
  const stray = out.indexOf('{{');
  if (stray >= 0)
    throw new InputError(
      'bad-fragment',
      `${source}: malformed placeholder near ${JSON.stringify(out.slice(stray, stray + 30))}`,
    );
  return out;
}
