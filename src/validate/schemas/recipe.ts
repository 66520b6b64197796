/**
 * A recipe document (docker-defs/<name>/recipe.yaml) as YAML's failsafe
 * schema gives it: every scalar a string (3.10 stays "3.10"), lists and
 * mappings. Names that end up in image and file names pass the name rule;
 * relations between fields (a default that fits its parameter, naming
 * parts that name parameters) are checked in recipe/schema.ts.
 */
import { z } from 'zod';
import { nameField } from '../schema';

export const PARAM_TYPES = ['version', 'enum', 'list', 'path', 'string', 'integer'] as const;

/** A list default may be written as a YAML list: kept comma-separated. */
const listOrScalar = z.union([z.string(), z.array(z.string()).transform((a) => a.join(','))]);

export const paramDocSchema = z.strictObject({
  type: z.enum(PARAM_TYPES),
  description: z.string().optional(),
  default: listOrScalar,
  pattern: z.string().optional(),
  values: z.array(z.string()).min(1).optional(),
});

/**
 * A file served at build time and what may become of it. `licensed`: never
 * in any layer, the config or the history (an undeclared served file counts
 * as licensed). `tool`: fetched to stay at `path` with exactly the served
 * bytes. A new role is one more member of the union (and its case in
 * fileserver/roles.ts). `file` and `path` may hold `{{ param }}`; `path`
 * may start with `$VAR` of the rendered definition's ENV; `when` is a
 * template condition (`rocm >= 6`) under which the file is served.
 */
const servedFile = z
  .string()
  .regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9_.{}| +/-]+$/, 'a relative file name under the served directory');
const servedWhen = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*\s*(>=|<|==|!=)\s*[A-Za-z0-9_.-]+$/, 'a condition like rocm >= 6');
export const servedDocSchema = z.discriminatedUnion('role', [
  z.strictObject({ file: servedFile, role: z.literal('licensed'), when: servedWhen.optional() }),
  z.strictObject({
    file: servedFile,
    role: z.literal('tool'),
    path: z
      .string()
      .regex(/^(\/|\$\{?[A-Z_][A-Z0-9_]*\}?\/)[^\s"'`\\]*$/, 'an absolute path in the image (it may start with $VAR)'),
    when: servedWhen.optional(),
  }),
]);
export type ServedDoc = z.infer<typeof servedDocSchema>;
/** A sha256 as recorded in a recipe, or the word that says nobody has recorded it yet. */
const SOURCE_DIGEST = z
  .string()
  .regex(
    /^([0-9a-f]{64}|unverified)$/,
    '64 lower-case hex digits, or "unverified" until a published digest is recorded',
  );

/** A URL's characters after the scheme: no spaces, quotes, backslashes or braces but whole `{{ parameter }}`s (with a filter). */
const URL_CHARS = String.raw`(?:[^\s'"\\{}|]|\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:\|\s*[A-Za-z_]+\s*)?\}\})+`;

/**
 * A file a definition downloads (recipe/sources.ts). Exactly one of `url`
 * (http/https), `git` (a repository at `commit`) or `path` (a file shipped
 * beside the recipe, as EasyBuild ships patches). `url` may use the
 * recipe's parameters; `sha256` is one digest, or a table keyed by the
 * value of the parameter named in `by` (one row per version).
 */
export const sourceDocSchema = z
  .strictObject({
    url: z
      .string()
      .regex(new RegExp(`^https?://${URL_CHARS}$`), 'an http(s) URL without spaces or quotes ({{ parameter }} allowed)')
      .optional(),
    git: z
      .string()
      .regex(new RegExp(`^https://${URL_CHARS}$`), 'an https URL of a git repository')
      .optional(),
    path: z
      .string()
      .regex(/^[A-Za-z0-9._-][A-Za-z0-9._/-]*$/, 'a relative path of letters, digits, . _ - /')
      .optional(),
    commit: z
      .string()
      .regex(/^[0-9a-f]{40}$/, 'a full 40-hex-digit commit')
      .optional(),
    submodules: z.enum(['true', 'false']).optional(),
    by: z.string().optional(),
    sha256: z.union([SOURCE_DIGEST, z.record(z.string(), SOURCE_DIGEST)]),
    note: z.string().optional(),
  })
  .refine(
    (s) => [s.url, s.git, s.path].filter((x) => x !== undefined).length === 1,
    'give exactly one of url, git or path',
  )
  .refine(
    (s) => (s.git === undefined) === (s.commit === undefined),
    'a git source needs its commit, and only a git source has one',
  )
  .refine(
    (s) => (typeof s.sha256 === 'string') === (s.by === undefined),
    'a sha256 table needs `by` (the parameter it is keyed by), a single sha256 none',
  );

export const recipeDocSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'lower-case letters, digits and dashes'),
  description: z.string().optional(),
  naming: z.strictObject({
    prefix: nameField('version').optional(),
    app: nameField('version').optional(),
    version: z.string(),
    parts: z.array(z.tuple([nameField('version'), z.string()])),
  }),
  fragments: z.array(z.string()).min(1),
  context: z.string().optional(),
  server_files: z.string().optional(),
  served: z.array(servedDocSchema).optional(),
  sources: z
    .record(z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'lower-case letters, digits and dashes'), sourceDocSchema)
    .optional(),
  parameters: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'lower-case letters, digits and _'), paramDocSchema),
  runtime_args: z.array(z.string()).optional(),
  matrix: z.array(z.record(z.string(), z.string())).optional(),
  checks: z.array(z.unknown()).optional(),
  testing: z.record(z.string(), z.unknown()).optional(),
});
export type RecipeDoc = z.infer<typeof recipeDocSchema>;
