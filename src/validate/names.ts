/**
 * The one rule for every name that becomes part of a path or a reference:
 * stems, dockerhashes, recipe names, tags, variants, EasyConfig and module
 * names. A name read from a SIF label, a recipe, a ledger, a results file or
 * a CLI argument is data until it has passed here; nothing joins it into a
 * path before. The shapes are those LUMI's names use (reference §2-3).
 * Pure: no file system, no process state.
 */
import { InputError } from '../errors';

export type NameKind =
  | 'stem'
  | 'dockerhash'
  | 'recipe'
  | 'tag'
  | 'image reference'
  | 'variant'
  | 'easyconfig'
  | 'module'
  | 'version'
  | 'sif file'
  | 'file name';

/** A version or name part: starts with a letter or digit; letters, digits, `.`, `_`, `+`, `-`. */
const PART = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

interface Rule {
  test(value: string): boolean;
  max: number;
  expected: string;
}

// Room for `-dockerhash-<12 hex>.sif` and a temp suffix under NAME_MAX (255).
const STEM_MAX = 160;

const rules: Record<NameKind, Rule> = {
  stem: {
    test: (v) => PART.test(v) && !v.includes('..'),
    max: STEM_MAX,
    expected:
      'letters, digits, `.`, `_`, `+`, `-`, starting with a letter or digit, like lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6',
  },
  dockerhash: { test: (v) => /^[0-9a-f]{12}$/.test(v), max: 12, expected: '12 lowercase hex digits' },
  recipe: {
    test: (v) => /^[a-z0-9][a-z0-9._-]*$/.test(v) && !v.includes('..'),
    max: 64,
    expected: 'a recipe directory name: lowercase letters, digits, `.`, `_`, `-`',
  },
  // Any image an engine is asked about: a Docker reference (registry host and port, repository path,
  // tag, digest) or an image ID. Checked before it becomes part of an Engine API path: `../x` there
  // is a redirect the client follows to another host.
  'image reference': {
    test: (v) =>
      /^(?:sha256:)?[0-9a-f]{12,64}$/.test(v) ||
      /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$/.test(
        v,
      ),
    max: 512,
    expected: 'a Docker reference like lumi/lumi-mpi4py:TAG, or an image ID',
  },
  // A Docker reference as LUMI tags its images: repository path, optional tag.
  tag: {
    test: (v) =>
      /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/.test(
        v,
      ),
    max: 255,
    expected: 'a Docker reference like lumi/lumi-mpi4py:rocm-6.2.0-python-3.12-mpi4py-3.1.6',
  },
  variant: {
    test: (v) => PART.test(v) && !v.includes('..'),
    max: STEM_MAX,
    expected: 'letters, digits, `.`, `_`, `+`, `-`',
  },
  easyconfig: {
    test: (v) => PART.test(v) && v.endsWith('.eb') && !v.includes('..'),
    max: 200,
    expected: 'an EasyConfig file name like mpi4py-3.1.6-rocm-6.2.0-python-3.12-singularity-20241007.eb',
  },
  module: {
    test: (v) => {
      const parts = v.split('/');
      return parts.length === 2 && parts.every((p) => PART.test(p) && !p.includes('..'));
    },
    max: 200,
    expected: 'NAME/VERSION like mpi4py/3.1.6-rocm-6.2.0-python-3.12-singularity-20241007',
  },
  version: {
    test: (v) => PART.test(v) && !v.includes('..'),
    max: 64,
    expected: 'a version: letters, digits, `.`, `_`, `+`, `-`',
  },
  'sif file': {
    test: (v) => /^[A-Za-z0-9][A-Za-z0-9._+-]*-dockerhash-[0-9a-f]{12}\.(sif|tar)$/.test(v) && !v.includes('..'),
    max: STEM_MAX + 25,
    expected: '<stem>-dockerhash-<12 hex>.sif',
  },
  'file name': {
    test: (v) => PART.test(v) && v !== '.' && !v.includes('..'),
    max: 255,
    expected: 'a plain file name: letters, digits, `.`, `_`, `+`, `-`, no directories',
  },
};

/**
 * A value as it can be shown in a one-line message: quoted, at most 80
 * characters, every control, non-ASCII or quote character escaped, so a
 * hostile label cannot break the line or the terminal.
 */
export function escapeForMessage(value: unknown, max = 80): string {
  const text =
    typeof value === 'string' ? value : value === undefined ? 'undefined' : (JSON.stringify(value) ?? String(value));
  let out = '';
  for (const ch of text.slice(0, max)) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0d) out += '\\r';
    else out += c > 0xffff ? `\\u{${c.toString(16)}}` : `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return `"${out}"${text.length > max ? '...' : ''}`;
}

/** True when `value` is a valid name of this kind. */
export function isValidName(kind: NameKind, value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= rules[kind].max && rules[kind].test(value);
}

/**
 * `value` if it is a valid name of this kind, else an InputError (exit 2)
 * naming where it came from (`source`: e.g. `label io.sifkit.stem of x.sif`,
 * `--stem`, `ledger entry y.json`) and the value, escaped, in one line.
 */
export function checkName(kind: NameKind, value: unknown, source: string): string {
  if (isValidName(kind, value)) return value;
  const r = rules[kind];
  const why =
    typeof value !== 'string'
      ? `a ${value === null ? 'null' : typeof value}`
      : value.length > r.max
        ? `longer than ${r.max} characters`
        : 'not allowed';
  throw new InputError('bad-name', `${source}: ${kind} ${escapeForMessage(value)} is ${why}; expected ${r.expected}`);
}

/** The form every image argument takes; each command adds the others it takes. */
export const IMAGE_NAME_FORM = 'an image file name <stem>-dockerhash-<12 hex>.sif (.sif may be left off)';

/**
 * An image argument's file name in the tree (`.sif` added when left off).
 * The refusal names every form the command takes (`others`: a dockerhash,
 * a path), not only the file name: a user who gave a wrong one learns what
 * else would do.
 */
export function imageArgName(arg: string, source: string, others: string[]): string {
  const name = arg.endsWith('.sif') ? arg : `${arg}.sif`;
  if (isValidName('sif file', name)) return name;
  throw new InputError(
    'bad-name',
    `${source}: ${escapeForMessage(arg)} is not ${[IMAGE_NAME_FORM, ...others].join(', nor ')}`,
  );
}
