/**
 * One way to check a document sifkit reads against its zod schema, and one
 * way to say what is wrong with it: a single line naming the file, the
 * field path, what was expected and what was found (escaped, so a hostile
 * value cannot break the line). Pure.
 */
import { z } from 'zod';
import { InputError } from '../errors';
import { escapeForMessage, isValidName, type NameKind } from './names';

/** `runs[0].checks[2].name`, or `(the document)` for the top level. */
export function fieldPath(p: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const k of p) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (typeof k === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${escapeForMessage(String(k), 40)}]`;
  }
  return out || '(the document)';
}

/** What a value is, for "found ...": its type, and short scalars themselves. */
export function describeFound(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${escapeForMessage(v, 40)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `the ${typeof v} ${String(v)}`;
  return `a ${typeof v}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function valueAt(root: unknown, p: ReadonlyArray<PropertyKey>): unknown {
  let cur = root;
  for (const k of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

/** The first issue of a failed parse as `SOURCE: PATH: expected X, found Y`. */
export function formatIssue(issue: z.core.$ZodIssue, input: unknown, source: string): string {
  const at = fieldPath(issue.path);
  const found = describeFound(valueAt(input, issue.path));
  let expected: string;
  switch (issue.code) {
    case 'invalid_type':
      expected =
        issue.expected === 'array' ? 'a list' : issue.expected === 'object' ? 'a mapping' : `a ${issue.expected}`;
      break;
    case 'unrecognized_keys':
      return oneLine(
        `${source}: ${at}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => escapeForMessage(k, 40)).join(', ')}`,
      );
    case 'invalid_value':
      expected = `one of ${issue.values.map((v) => escapeForMessage(v, 40)).join(', ')}`;
      break;
    case 'invalid_union':
      expected = 'one of the forms this field takes';
      break;
    case 'too_small':
    case 'too_big': {
      const cmp =
        issue.code === 'too_small' ? (issue.inclusive === false ? '>' : '>=') : issue.inclusive === false ? '<' : '<=';
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      expected =
        issue.origin === 'array' || issue.origin === 'set'
          ? `${cmp} ${bound} items`
          : issue.origin === 'string'
            ? `${cmp} ${bound} characters`
            : `a number ${cmp} ${bound}`;
      break;
    }
    case 'invalid_format':
      // Our own messages say what is meant; zod's default ones only name the check.
      expected = /^Invalid/.test(issue.message)
        ? issue.pattern
          ? `text matching ${issue.pattern}`
          : `text in ${issue.format} format`
        : issue.message;
      break;
    default:
      expected = issue.message;
  }
  return oneLine(`${source}: ${at}: expected ${expected}, found ${found}`);
}

/**
 * `value` checked against `schema`: the parsed, typed result, or an
 * InputError (exit 2) whose one-line message names `source` and the first
 * field that is wrong.
 */
export function parseDocument<S extends z.ZodType>(
  schema: S,
  value: unknown,
  source: string,
  code = 'bad-file',
): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new InputError(code, formatIssue(r.error.issues[0], value, source));
}

/** JSON text checked against `schema`, with the JSON syntax error on one line too. */
export function parseJsonDocument<S extends z.ZodType>(
  schema: S,
  text: string,
  source: string,
  code = 'bad-file',
): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InputError(code, oneLine(`${source}: not valid JSON: ${(e as Error).message}`));
  }
  return parseDocument(schema, value, source, code);
}

/**
 * A string that must pass the one name rule (names.ts) for `kind`: a name
 * read from a file is data until it has, like one from a label or a flag.
 */
export function nameField(kind: NameKind) {
  return z.string().refine((v) => isValidName(kind, v), { message: `a valid ${kind} name` });
}
