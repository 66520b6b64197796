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
  parameters: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'lower-case letters, digits and _'), paramDocSchema),
  runtime_args: z.array(z.string()).optional(),
  matrix: z.array(z.record(z.string(), z.string())).optional(),
  checks: z.array(z.unknown()).optional(),
  testing: z.record(z.string(), z.unknown()).optional(),
});
export type RecipeDoc = z.infer<typeof recipeDocSchema>;
