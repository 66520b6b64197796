import { parse as parseYaml } from 'yaml';
import { InputError } from '../errors';
import { checkValue } from './params';
import type { ParamSpec, ParamType, Recipe } from './types';

const TYPES: ParamType[] = ['version', 'enum', 'list', 'path', 'string', 'integer'];
const NAME = /^[a-z][a-z0-9_]*$/;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Scalars in YAML (3.10 is a number!) are taken as the text the user wrote. */
function scalar(v: unknown, where: string, fail: (m: string) => never): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.join(',');
  return fail(`${where} must be a string`);
}

/**
 * Validates a recipe document (already read) into a Recipe. Pure: `dir` is
 * only recorded. Numbers are parsed from YAML as strings (the `yaml`
 * package's core schema would turn `3.10` into 3.1), see `loadRecipeText`.
 */
export function parseRecipe(text: string, dir: string, source: string): Recipe {
  const fail = (m: string): never => {
    throw new InputError('bad-recipe', `${source}: ${m}`);
  };
  let doc: unknown;
  try {
    // The failsafe schema keeps every scalar a string: 3.10 stays "3.10".
    doc = parseYaml(text, { schema: 'failsafe' });
  } catch (e) {
    fail(`not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isObj(doc)) return fail('must be a mapping');
  const known = ['name', 'description', 'naming', 'fragments', 'context', 'parameters', 'runtime_args', 'matrix', 'checks', 'testing', 'server_files'];
  for (const k of Object.keys(doc)) if (!known.includes(k)) fail(`unknown key ${k}`);

  const name = scalar(doc.name, 'name', fail);
  if (!/^[a-z][a-z0-9-]*$/.test(name)) fail(`name ${JSON.stringify(name)} must be lower-case letters, digits and dashes`);

  if (!Array.isArray(doc.fragments) || doc.fragments.length === 0) fail('fragments must be a non-empty list');
  const fragments = (doc.fragments as unknown[]).map((f, i) => scalar(f, `fragments[${i}]`, fail));

  if (!isObj(doc.parameters)) return fail('parameters must be a mapping');
  const parameters: ParamSpec[] = [];
  for (const [pname, raw] of Object.entries(doc.parameters)) {
    if (!NAME.test(pname)) fail(`parameter name ${JSON.stringify(pname)} must be lower-case letters, digits and _`);
    if (!isObj(raw)) return fail(`parameter ${pname} must be a mapping`);
    const type = scalar(raw.type, `parameter ${pname}: type`, fail) as ParamType;
    if (!TYPES.includes(type)) fail(`parameter ${pname}: type must be one of ${TYPES.join(', ')}`);
    const values = raw.values === undefined ? undefined : (raw.values as unknown[]).map((v, i) => scalar(v, `parameter ${pname}: values[${i}]`, fail));
    if ((type === 'enum' || type === 'list') && (!values || values.length === 0)) fail(`parameter ${pname}: ${type} needs values`);
    const spec: ParamSpec = {
      name: pname,
      type,
      description: raw.description === undefined ? '' : scalar(raw.description, `parameter ${pname}: description`, fail),
      default: scalar(raw.default, `parameter ${pname}: default`, fail),
      pattern: raw.pattern === undefined ? undefined : scalar(raw.pattern, `parameter ${pname}: pattern`, fail),
      values,
    };
    if (spec.pattern !== undefined) {
      try {
        new RegExp(spec.pattern);
      } catch {
        fail(`parameter ${pname}: pattern is not a regular expression`);
      }
    }
    // The default itself must pass validation, or every render would fail later.
    try {
      checkValue(spec, spec.default);
    } catch (e) {
      fail(`default of ${(e as Error).message}`);
    }
    parameters.push(spec);
  }
  const pnames = new Set(parameters.map((p) => p.name));

  if (!isObj(doc.naming)) return fail('naming must be a mapping');
  const n = doc.naming;
  const parts = Array.isArray(n.parts) ? n.parts : fail('naming.parts must be a list of [label, parameter]');
  const naming = {
    prefix: n.prefix === undefined ? 'lumi' : scalar(n.prefix, 'naming.prefix', fail),
    app: scalar(n.app ?? name, 'naming.app', fail),
    version: scalar(n.version, 'naming.version', fail),
    parts: (parts as unknown[]).map((p, i) => {
      if (!Array.isArray(p) || p.length !== 2) fail(`naming.parts[${i}] must be [label, parameter]`);
      const [label, param] = (p as unknown[]).map((x) => scalar(x, `naming.parts[${i}]`, fail));
      if (!pnames.has(param)) fail(`naming.parts[${i}] names unknown parameter ${param}`);
      return [label, param] as [string, string];
    }),
  };
  if (!pnames.has(naming.version)) fail(`naming.version names unknown parameter ${naming.version}`);

  const matrix = doc.matrix === undefined ? [] : Array.isArray(doc.matrix) ? doc.matrix : fail('matrix must be a list');
  const rows = (matrix as unknown[]).map((row, i) => {
    if (!isObj(row)) return fail(`matrix[${i}] must be a mapping`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(row)) {
      if (!pnames.has(k)) fail(`matrix[${i}] names unknown parameter ${k}`);
      out[k] = scalar(v, `matrix[${i}].${k}`, fail);
    }
    return out;
  });

  const runtimeArgs = doc.runtime_args === undefined ? [] : (doc.runtime_args as unknown[]).map((a, i) => scalar(a, `runtime_args[${i}]`, fail));

  return {
    name,
    description: doc.description === undefined ? '' : scalar(doc.description, 'description', fail),
    dir,
    naming,
    fragments,
    context: doc.context === undefined ? undefined : scalar(doc.context, 'context', fail),
    serverFiles: doc.server_files === undefined ? undefined : scalar(doc.server_files, 'server_files', fail),
    parameters,
    runtimeArgs,
    matrix: rows,
    checks: Array.isArray(doc.checks) ? doc.checks : [],
    testing: isObj(doc.testing) ? doc.testing : {},
  };
}
