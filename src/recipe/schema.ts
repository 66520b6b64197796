import { parseYaml } from '../util/yaml';
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { parseDocument } from '../validate/schema';
import { recipeDocSchema } from '../validate/schemas/recipe';
import { checkValue } from './params';
import { parseChecks } from './checks';
import { parseProfile } from './testing';
import type { ParamSpec, Recipe, SourceSpec } from './types';

/**
 * Validates a recipe document (already read) into a Recipe: its shape by
 * the schema (validate/schemas/recipe.ts), then how its fields relate.
 * Pure: `dir` is only recorded. Every scalar stays the text the user wrote
 * (YAML's core schema would turn `3.10` into 3.1).
 */
export function parseRecipe(text: string, dir: string, source: string): Recipe {
  const fail = (m: string): never => {
    throw new InputError('bad-recipe', `${source}: ${m}`);
  };
  let raw: unknown;
  try {
    // The failsafe schema keeps every scalar a string: 3.10 stays "3.10".
    raw = parseYaml(text, { schema: 'failsafe' });
  } catch (e) {
    fail(`not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const doc = parseDocument(recipeDocSchema, raw, source, 'bad-recipe');
  const name = doc.name;
  const fragments = doc.fragments;

  const parameters: ParamSpec[] = [];
  for (const [pname, raw] of Object.entries(doc.parameters)) {
    const type = raw.type;
    const values = raw.values;
    if ((type === 'enum' || type === 'list') && !values) fail(`parameters.${pname}: ${type} needs values`);
    const spec: ParamSpec = {
      name: pname,
      type,
      description: raw.description ?? '',
      default: raw.default,
      pattern: raw.pattern,
      values,
    };
    if (spec.pattern !== undefined) {
      try {
        new RegExp(spec.pattern);
      } catch {
        fail(`parameters.${pname}.pattern: expected a regular expression, found ${escapeForMessage(spec.pattern)}`);
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
  const known = (param: string, where: string) => {
    if (!pnames.has(param)) fail(`${where}: names unknown parameter ${escapeForMessage(param)}`);
  };

  const n = doc.naming;
  const naming = { prefix: n.prefix ?? 'lumi', app: n.app ?? name, version: n.version, parts: n.parts };
  n.parts.forEach(([, param], i) => known(param, `naming.parts[${i}]`));
  known(naming.version, 'naming.version');

  const rows = (doc.matrix ?? []).map((row, i) => {
    for (const k of Object.keys(row)) known(k, `matrix[${i}]`);
    return row;
  });
  const runtimeArgs = doc.runtime_args ?? [];
  const served = doc.served ?? [];
  const seen = new Set<string>();
  served.forEach((s, i) => {
    if (s.when !== undefined) known(s.when.split(/\s|[<>=!]/)[0], `served[${i}].when`);
    // Two entries may share a name only under different conditions; the same text twice is a slip.
    const key = `${s.file}\0${s.when ?? ''}`;
    if (seen.has(key)) fail(`served[${i}].file: ${escapeForMessage(s.file)} is declared twice`);
    seen.add(key);
  });

  const sources: Record<string, SourceSpec> = {};
  for (const [sname, s] of Object.entries(doc.sources ?? {})) {
    const where = `sources.${sname}`;
    if (s.by !== undefined) known(s.by, `${where}.by`);
    const location = s.url ?? s.git ?? s.path ?? '';
    for (const m of location.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)/g)) known(m[1], `${where} URL`);
    if (s.path !== undefined && s.path.split('/').includes('..'))
      fail(`${where}.path: must stay inside the recipe directory`);
    sources[sname] = {
      name: sname,
      kind: s.git !== undefined ? 'git' : s.path !== undefined ? 'local' : 'file',
      location,
      commit: s.commit,
      submodules: s.submodules === 'true',
      by: s.by,
      sha256: s.sha256,
      note: s.note,
    };
  }
  // A source reaches the build through the file server, so the recipe must take its port.
  if (Object.keys(sources).length > 0 && !runtimeArgs.includes('SERVER_PORT'))
    fail('sources are fetched from the build-time file server: runtime_args must include SERVER_PORT');

  return {
    name,
    description: doc.description ?? '',
    dir,
    naming,
    fragments,
    context: doc.context,
    serverFiles: doc.server_files,
    served,
    parameters,
    sources,
    runtimeArgs,
    matrix: rows,
    checks: parseChecks(doc.checks ?? [], name),
    testing: parseProfile(doc.testing, name),
  };
}
