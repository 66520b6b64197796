/**
 * The served files of one variant: the recipe's declarations with their
 * `when` decided, `{{ param }}` substituted and a tool's `$VAR/...` path
 * resolved against the rendered definition's ENV. Pure.
 */
import * as path from 'node:path';
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { conditionHolds, substitute } from './template';
import type { ParamValues, Recipe, ServedRole } from './types';

const PLAIN_FILE = /^[A-Za-z0-9._+-]+(\/[A-Za-z0-9._+-]+)*$/;

export interface ServedFile {
  /** Name under the served directory. */
  file: string;
  role: ServedRole;
  /** For a tool: the absolute path it must stay at. */
  path?: string;
}

/** A served file's name and role, one line per file in sorted order: what a verdict records. */
export function rolesKey(served: ServedFile[]): string {
  return [...served]
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))
    .map((s) => `${s.file} ${s.role}${s.path ? ` ${s.path}` : ''}`)
    .join('\n');
}

/** A present served file's role and tool path: as declared, else licensed (what the leak scan judges it as). */
export function servedRole(file: string, served: ServedFile[]): ServedFile {
  return served.find((s) => s.file === file) ?? { file, role: 'licensed' };
}

/** Expands `$VAR` and `${VAR}` from `env`; an unknown name stays as written. */
export function expandVars(text: string, env: ReadonlyMap<string, string>): string {
  return text.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (m, a: string | undefined, b: string | undefined) => env.get((a ?? b) as string) ?? m,
  );
}

export function resolveServed(recipe: Recipe, values: ParamValues, env: ReadonlyMap<string, string>): ServedFile[] {
  const out = new Map<string, ServedFile>();
  recipe.served.forEach((d, i) => {
    const where = `${recipe.name}: served[${i}]`;
    if (d.when !== undefined && !conditionHolds(d.when, values, `${where}.when`)) return;
    const file = substitute(d.file, values, `${where}.file`);
    // A plain name: a step fetches it in a URL, and rolesKey writes it on a line of its own, split at spaces.
    if (path.posix.normalize(file) !== file || file.startsWith('/') || file.startsWith('..') || !PLAIN_FILE.test(file))
      throw new InputError(
        'bad-recipe',
        `${where}.file: ${escapeForMessage(file)} is not a plain relative name (letters, digits, . _ + - and /)`,
      );
    if (out.has(file)) throw new InputError('bad-recipe', `${where}.file: ${file} is declared twice for this variant`);
    if (d.role === 'tool') {
      const p = expandVars(substitute(d.path, values, `${where}.path`), env);
      if (p.includes('$') || !p.startsWith('/') || path.posix.normalize(p) !== p)
        throw new InputError(
          'bad-recipe',
          `${where}.path: ${JSON.stringify(p)} is not an absolute path once the definition's ENV is applied`,
        );
      out.set(file, { file, role: 'tool', path: p });
    } else out.set(file, { file, role: d.role });
  });
  return [...out.values()];
}
