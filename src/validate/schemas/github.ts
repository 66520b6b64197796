/**
 * The GitHub REST answers the pull-request host reads. Only the fields
 * sifkit uses are checked (`looseObject`: GitHub adds fields); a server
 * that answers 200 with something else is a failure with one line, never
 * a TypeError further on.
 */
import { z } from 'zod';

/** A git object name: SHA-1, or SHA-256 in a repository that uses it. */
const sha = z.string().regex(/^([0-9a-f]{40}|[0-9a-f]{64})$/, 'a git object name (40 or 64 hex digits)');

export const repoAnswer = z.looseObject({ default_branch: z.string().min(1) });
export const refAnswer = z.looseObject({ object: z.looseObject({ sha }) });
export const commitAnswer = z.looseObject({ sha, tree: z.looseObject({ sha }) });
export const createdAnswer = z.looseObject({ sha });
/** A path's content: a file (with its blob), or a directory's listing (an array). */
export const contentAnswer = z.union([z.looseObject({ type: z.string(), sha: sha.optional() }), z.array(z.unknown())]);
export const pullAnswer = z.looseObject({
  number: z.number().int().positive(),
  html_url: z.string(),
  title: z.string(),
  body: z.string().nullish(),
});
export const pullListAnswer = z.array(pullAnswer);
