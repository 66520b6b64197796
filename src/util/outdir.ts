/**
 * Writing into an output directory a person named (`render --out`,
 * `easyconfig --out`, `module --out`): the directory is made when missing,
 * a file in its place is bad input named as such, and every file written
 * resolves inside it (targetInside), whatever the names a label gave.
 * A file already there with other content is replaced only when told
 * (`--force`): generated files are often edited by hand afterwards, and
 * another image's or variant's files must not be lost to a mistyped --out.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError, RefusedError, errnoCode } from '../errors';
import { writeFileAtomic } from './files';
import { targetInside } from '../validate/paths';

/** `dir` made (with parents) and resolved; `flag` names it in errors. */
export async function makeOutputDir(dir: string, flag: string): Promise<string> {
  const abs = path.resolve(dir);
  try {
    await fs.mkdir(abs, { recursive: true });
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST' || code === 'ENOTDIR')
      throw new InputError(
        'not-a-directory',
        `${flag} ${abs}: ${code === 'EEXIST' ? 'a file is there, not a directory' : 'a parent of it is a file'}`,
      );
    throw e;
  }
  return abs;
}

/** Writes `dir/rel` atomically, its parents made, after checking it lies inside `dir`. */
export async function writeInside(dir: string, rel: string, text: string, mode?: number): Promise<string> {
  const target = await targetInside(dir, ...rel.split('/'));
  await fs.mkdir(path.dirname(target), { recursive: true });
  await writeFileAtomic(target, text, mode);
  return target;
}

/**
 * Refuses (exit 3), before anything is written, when a file of `files`
 * (relative path → content) is already in `dir` with other content and
 * `force` is not set. The same content again is a rerun, never refused.
 * `whose` says what an existing file was made for (another image made the
 * same day gets the same names), for the message.
 */
export async function refuseOverwrite(
  dir: string,
  files: Iterable<[string, string]>,
  opts: {
    force?: boolean;
    whose?: (existing: string) => string | undefined;
    /** True when the existing file is an earlier version of this same output (a re-render): replaced. */
    own?: (existing: string) => boolean;
    /** The hint when `whose` named the other owner (default: the one for two versions made on one day). */
    otherHint?: string;
  },
): Promise<void> {
  if (opts.force) return;
  for (const [rel, text] of files) {
    const target = await targetInside(dir, ...rel.split('/'));
    const existing = await fs.readFile(target, 'utf8').catch(() => undefined);
    if (existing === undefined || existing === text || opts.own?.(existing)) continue;
    const whose = opts.whose?.(existing);
    throw new RefusedError('exists', `${target} is already there with other content${whose ? ` (${whose})` : ''}`, {
      hint: whose
        ? (opts.otherHint ??
          'two versions made on one day get the same names: give this one --date of another day, or --force to replace that file')
        : '--force replaces it',
    });
  }
}
