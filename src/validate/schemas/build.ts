/**
 * build.json, which `render --out` writes beside the Dockerfile: what the
 * definition is (recipe, parameters, names, hash, labels). Declared here
 * so that the file's shape is written down once and its type derived.
 */
import { z } from 'zod';
import { nameField } from '../schema';
import { sha256Field } from './ledger';

export const buildJsonSchema = z.strictObject({
  recipe: nameField('recipe'),
  parameters: z.record(z.string(), z.string()),
  names: z.strictObject({
    tag: nameField('tag'),
    stem: nameField('stem'),
    easyconfig: nameField('easyconfig'),
    module: nameField('module'),
  }),
  definitionHash: sha256Field,
  buildArgs: z.array(z.string()),
  labels: z.record(z.string(), z.string()),
  lintWarnings: z.array(
    z.strictObject({ line: z.number().int(), severity: z.enum(['error', 'warning']), message: z.string() }),
  ),
});
export type BuildJson = z.infer<typeof buildJsonSchema>;
