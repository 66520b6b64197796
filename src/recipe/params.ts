import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { namingSuffix } from './names';
import type { ParamSpec, ParamValues, Recipe } from './types';

/**
 * Characters that could escape a Dockerfile line or a shell word once a
 * value is substituted: newline, quotes, `$`, backtick, `;`, backslash and
 * any other control character.
 */
const UNSAFE = /[\n\r'"$`;\\\u0000-\u001f\u007f]/;

/**
 * What a value may hold at all. Fragments substitute values as plain text
 * into Dockerfile instructions and the shell lines of their RUNs, so a
 * value must be one plain word there: `& | < > ( ) { } * ? ~ # !` would be
 * shell syntax (`/opt&&reboot`, `x>/etc/passwd`), and characters outside
 * ASCII (C1 controls, bidirectional overrides, line separators) would be
 * hidden or reordered in the definition a reviewer reads. An allowlist,
 * because a denylist is one forgotten character from a command.
 */
const PLAIN = /^[A-Za-z0-9._+,:/=@-]+$/;

/** Splits `k=v` flags; the value may itself contain `=`. */
export function parseSets(sets: readonly string[]): ParamValues {
  const out: ParamValues = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new InputError('bad-set', `--set ${JSON.stringify(s)} is not of the form name=value`);
    const key = s.slice(0, eq).trim();
    if (key in out) throw new InputError('bad-set', `--set ${key} is given twice`);
    out[key] = s.slice(eq + 1);
  }
  return out;
}

/** Checks one value against its spec; returns the normalised value. */
export function checkValue(spec: ParamSpec, raw: string): string {
  const name = spec.name;
  const fail = (why: string): never => {
    throw new InputError('bad-parameter', `parameter ${name}: ${why}`);
  };
  if (UNSAFE.test(raw))
    fail(
      `value ${JSON.stringify(raw)} contains a character that is not allowed (newline, quote, $, backtick, ; or backslash)`,
    );
  const value = raw.trim();
  if (value === '') fail('value is empty');
  const plain = (v: string) => {
    if (!PLAIN.test(v))
      fail(
        `value ${escapeForMessage(v)} contains a character that is not allowed (a value is one word of letters, digits and . _ - + , : / = @)`,
      );
  };
  if (spec.type !== 'list') plain(value);
  switch (spec.type) {
    case 'version':
      if (!/^\d+(\.\d+)*([.-]?[A-Za-z0-9]+)*$/.test(value)) fail(`${JSON.stringify(value)} is not a version`);
      break;
    case 'integer':
      if (!/^\d+$/.test(value)) fail(`${JSON.stringify(value)} is not a whole number`);
      break;
    case 'enum':
      if (!spec.values!.includes(value)) fail(`${JSON.stringify(value)} is not one of ${spec.values!.join(', ')}`);
      break;
    case 'list': {
      const items = value.split(',').map((v) => v.trim());
      items.forEach(plain);
      for (const item of items) {
        if (!spec.values!.includes(item)) fail(`${JSON.stringify(item)} is not one of ${spec.values!.join(', ')}`);
      }
      if (new Set(items).size !== items.length) fail('an item is given twice');
      return items.join(',');
    }
    case 'path':
      if (!value.startsWith('/')) fail(`${JSON.stringify(value)} is not an absolute path`);
      if (/\s/.test(value) || value.split('/').includes('..')) fail(`${JSON.stringify(value)} is not a plain path`);
      break;
    case 'string':
      if (/\s/.test(value)) fail(`${JSON.stringify(value)} contains white space`);
      break;
  }
  if (spec.pattern !== undefined && !new RegExp(spec.pattern).test(value)) {
    fail(`${JSON.stringify(value)} does not match ${spec.pattern}`);
  }
  return value;
}

/**
 * Resolves a variant's values: defaults, then the given values; unknown
 * names and bad values are refused before anything renders.
 */
export function resolveValues(recipe: Recipe, given: ParamValues): ParamValues {
  const specs = new Map(recipe.parameters.map((p) => [p.name, p]));
  for (const key of Object.keys(given)) {
    if (!specs.has(key)) {
      throw new InputError('unknown-parameter', `unknown parameter ${key} for recipe ${recipe.name}`, {
        hint: `known parameters: ${[...specs.keys()].join(', ')}`,
      });
    }
  }
  const out: ParamValues = {};
  for (const spec of recipe.parameters) {
    out[spec.name] = checkValue(spec, given[spec.name] ?? spec.default);
  }
  return out;
}

/**
 * The variants to render: with `matrix`, every matrix row with the given
 * values laid over it; otherwise the one variant of the given values.
 */
export function variantValues(recipe: Recipe, given: ParamValues, matrix: boolean): ParamValues[] {
  if (!matrix) return [resolveValues(recipe, given)];
  const rows = recipe.matrix.length > 0 ? recipe.matrix : [{}];
  const variants = rows.map((row) => resolveValues(recipe, { ...row, ...given }));
  checkDistinctNames(recipe, variants);
  return variants;
}

/**
 * Each variant of a matrix needs a name of its own: its stem is its link,
 * its SIF and its module, so two variants alike in every naming part
 * would be promoted to one link, the second over the first.
 */
function checkDistinctNames(recipe: Recipe, variants: ParamValues[]): void {
  const seen = new Map<string, number>();
  variants.forEach((values, i) => {
    const name = namingSuffix(recipe.naming, values);
    const first = seen.get(name);
    if (first === undefined) return void seen.set(name, i);
    const differ = Object.keys(values).filter((k) => values[k] !== variants[first][k]);
    throw new InputError(
      'matrix-names',
      `matrix rows ${first + 1} and ${i + 1} of ${recipe.name} get one name (${name || 'no naming parts'})${differ.length ? `: they differ only in ${differ.join(', ')}, which no naming part names` : ''}`,
      { hint: 'add the parameter that tells them apart to naming.parts, or drop one row' },
    );
  });
}

/**
 * Parameter values claimed by an image's `io.sifkit.param.*` labels,
 * checked against the recipe's schema (type, pattern, allowed values)
 * exactly as a `--set` is: a label the recipe does not declare, or a value
 * it would not take as given, is refused, never trusted.
 */
export function checkParamLabels(recipe: Recipe, labels: ParamValues, source: string): ParamValues {
  const specs = new Map(recipe.parameters.map((p) => [p.name, p]));
  const out: ParamValues = {};
  for (const [name, value] of Object.entries(labels)) {
    const spec = specs.get(name);
    if (!spec)
      throw new InputError(
        'bad-label',
        `${source}: label io.sifkit.param.${name} names no parameter of recipe ${recipe.name}`,
        { hint: `known parameters: ${[...specs.keys()].join(', ')}` },
      );
    let checked: string;
    try {
      checked = checkValue(spec, value);
    } catch (e) {
      throw new InputError(
        'bad-label',
        `${source}: label io.sifkit.param.${name}: ${(e as Error).message.replace(/^parameter \S+: /, '')}`,
      );
    }
    if (checked !== value)
      throw new InputError(
        'bad-label',
        `${source}: label io.sifkit.param.${name} ${JSON.stringify(value)} is not as sifkit writes it (${JSON.stringify(checked)})`,
      );
    out[name] = checked;
  }
  return out;
}
