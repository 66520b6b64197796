/**
 * What a module binds into its container, read from the module itself
 * (Lmod Lua), from an EasyConfig's `modextravars`, or from a bind list as
 * `singularity -B` takes it. Pure: text in, binds out. The module is read
 * as data (its string literals), never run.
 */
import { InputError } from '../errors';

export interface BindSpec {
  /** The entry as written: `src[:dst[:opts]]`. */
  spec: string;
  source: string;
  target: string;
}

/** LUMI binds these for users' data: no libraries there, and far too many files to walk. */
export const DATA_BINDS = [
  '/pfs',
  '/scratch',
  '/projappl',
  '/project',
  '/flash',
  '/appl',
  '/var/spool/slurmd',
  '/runscripts',
];

/** `/a//b/` → `/a/b`; refuses a relative path or one with `..`. */
export function normalisePath(p: string, what: string): string {
  if (!p.startsWith('/')) throw new InputError('bad-bind', `${what}: ${JSON.stringify(p)} is not an absolute path`);
  const parts = p.split('/').filter((x) => x && x !== '.');
  if (parts.includes('..')) throw new InputError('bad-bind', `${what}: ${JSON.stringify(p)} has ..`);
  if (/[\0\n]/.test(p)) throw new InputError('bad-bind', `${what}: a path with a NUL or newline`);
  return `/${parts.join('/')}`;
}

/** A comma-separated bind list, as SINGULARITY_BIND or -B takes it. */
export function parseBindList(text: string, what = 'bind list'): BindSpec[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((spec) => {
      const [src, dst, opts, ...rest] = spec.split(':');
      if (rest.length || (opts !== undefined && !/^(ro|rw)(,(ro|rw))*$/.test(opts)))
        throw new InputError('bad-bind', `${what}: ${JSON.stringify(spec)} is not src[:dst[:ro|rw]]`);
      return { spec, source: normalisePath(src, what), target: normalisePath(dst || src, what) };
    });
}

/** Lua string literals: "..." and '...' with escapes, [[...]] and [==[...]==]. */
const luaStringRe = (group: number) =>
  String.raw`"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\[(=*)\[[\s\S]*?\]` + `\\${group}\\]`;

function luaString(lit: string): string {
  if (lit.startsWith('[')) {
    const eq = /^\[(=*)\[/.exec(lit)![1].length;
    return lit.slice(eq + 2, lit.length - eq - 2).replace(/^\n/, '');
  }
  return lit.slice(1, -1).replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
}

/** Python string literals: '...' and "..." with escapes (no triple quotes, no prefixes). */
const PY_STRING = String.raw`'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"`;

function pyString(lit: string): string {
  return lit.slice(1, -1).replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
}

export interface ModuleBinds {
  binds: BindSpec[];
  /** LD_LIBRARY_PATH the module gives the container, if any. */
  ldLibraryPath: string[];
}

const BIND_VARS = ['SINGULARITY_BIND', 'SINGULARITY_BINDPATH', 'APPTAINER_BIND', 'APPTAINER_BINDPATH'];
const LDPATH_VARS = ['SINGULARITYENV_LD_LIBRARY_PATH', 'APPTAINERENV_LD_LIBRARY_PATH'];

/**
 * The binds of an Lmod module: `setenv`/`pushenv` of SINGULARITY_BIND (or
 * APPTAINER_BIND, *_BINDPATH), and `append_path`/`prepend_path` of them
 * with a "," delimiter, in order.
 */
export function bindsFromModule(text: string, file: string): ModuleBinds {
  // Groups: 1 the function, 2 the name (3 its long-bracket level), 4 the value (5 its level).
  const call = new RegExp(
    String.raw`\b(setenv|pushenv|append_path|prepend_path)\s*\(\s*(${luaStringRe(3)})\s*,\s*(${luaStringRe(5)})`,
    'g',
  );
  return collect(text, file, call, luaString, 4);
}

/**
 * The binds in an EasyConfig's `modextravars` ('SINGULARITY_BIND': '...').
 * `%(installdir)s` becomes `installdir` (default: the literal under /, a
 * path no host has, so such a bind reads as missing).
 */
export function bindsFromEasyconfig(text: string, file: string, installdir = '/%(installdir)s'): ModuleBinds {
  const entry = new RegExp(String.raw`()(${PY_STRING})\s*:\s*(${PY_STRING})`, 'g');
  return collect(text, file, entry, (lit) => pyString(lit).split('%(installdir)s').join(installdir), 3);
}

function collect(
  text: string,
  file: string,
  re: RegExp,
  unquote: (s: string) => string,
  valueGroup: number,
): ModuleBinds {
  let binds: BindSpec[] = [];
  let ldLibraryPath: string[] = [];
  let found = false;
  for (const m of text.matchAll(re)) {
    const fn = m[1];
    const name = unquote(m[2]);
    const value = unquote(m[valueGroup]);
    if (BIND_VARS.includes(name)) {
      found = true;
      const list = parseBindList(value, `${file}: ${name}`);
      binds = fn === 'append_path' ? [...binds, ...list] : fn === 'prepend_path' ? [...list, ...binds] : list;
    } else if (LDPATH_VARS.includes(name)) {
      const dirs = value.split(':').filter(Boolean);
      ldLibraryPath =
        fn === 'append_path' ? [...ldLibraryPath, ...dirs] : fn === 'prepend_path' ? [...dirs, ...ldLibraryPath] : dirs;
    }
  }
  if (!found) throw new InputError('no-binds', `${file} sets no SINGULARITY_BIND (nor APPTAINER_BIND)`);
  return { binds, ldLibraryPath };
}
