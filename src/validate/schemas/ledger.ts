/**
 * A ledger record (`.sifkit/ledger/<sif name>.json`): the checksum and
 * provenance of one image in the tree. Every name in it becomes a path
 * somewhere, so each passes the name rule.
 */
import { z } from 'zod';
import { nameField } from '../schema';
import { testRunSchema } from './results';

export const sha256Field = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 (64 lowercase hex digits)');

export const statKeySchema = z.object({
  size: z.number().int().nonnegative(),
  ino: z.number().nonnegative(),
  mtimeMs: z.number(),
  ctimeMs: z.number(),
});
export type StatKey = z.infer<typeof statKeySchema>;

export const ledgerEntrySchema = z.looseObject({
  name: nameField('sif file'),
  sha256: sha256Field,
  size: z.number().int().nonnegative(),
  stem: nameField('stem'),
  dockerhash: nameField('dockerhash'),
  imageCreated: z.string().optional(),
  recipe: nameField('recipe').optional(),
  params: z.record(z.string(), z.string()),
  labels: z.record(z.string(), z.string()),
  stagedAt: z.string(),
  stagedBy: z.string(),
  /** Stat at hashing time, by path relative to the root. */
  hashed: z.record(z.string(), statKeySchema),
  archive: z
    .object({ name: nameField('sif file'), sha256: sha256Field, size: z.number().int().nonnegative() })
    .optional(),
  /** Test runs recorded with the image (issue 8), held to the results file's schema: they reach the report and the pull request. */
  tests: z.array(testRunSchema).optional(),
});
export type LedgerEntry = z.infer<typeof ledgerEntrySchema>;
