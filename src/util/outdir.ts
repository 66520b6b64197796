/**
 * Writing into an output directory a person named (`render --out`,
 * `easyconfig --out`, `module --out`): the directory is made when missing,
 * a file in its place is bad input named as such, and every file written
 * resolves inside it (targetInside), whatever the names a label gave.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError, errnoCode } from '../errors';
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
