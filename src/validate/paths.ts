/**
 * Defence in depth under the name rule: every write into the tree or an
 * output directory goes through `targetInside`, which resolves the target
 * (symbolic links in its existing parents included) and refuses one that
 * lies outside the directory it is meant for. A name that passed
 * `checkName` never fails here; a bug or a planted link does, loudly.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { RefusedError } from '../errors';
import { escapeForMessage } from './names';

/** True when `target` lies inside `root` or is `root` (lexically, after resolving `..`). */
export function inside(root: string, target: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(target));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel) && rel.split(path.sep)[0] !== '..');
}

/** The real path of the deepest existing ancestor of `p`, with the rest appended. */
async function realpathOfExisting(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = path.resolve(p);
  for (;;) {
    try {
      return path.join(await fs.realpath(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return path.join(cur, ...rest.reverse());
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

/**
 * `path.join(dir, ...parts)` after checking that it stays inside `dir`,
 * both lexically and once links in the existing part of the path are
 * followed. The last component itself is not followed: it is what will be
 * written, renamed or linked.
 */
export async function targetInside(dir: string, ...parts: string[]): Promise<string> {
  const target = path.resolve(dir, ...parts);
  if (!inside(dir, target) || target === path.resolve(dir)) throw outside(dir, parts);
  const [realDir, realParent] = await Promise.all([realpathOfExisting(dir), realpathOfExisting(path.dirname(target))]);
  if (!inside(realDir, path.join(realParent, path.basename(target)))) throw outside(dir, parts);
  return target;
}

/**
 * Refuses a directory of a tree or output root that is a link leading
 * outside `root` (or to nothing): every write under it would land there,
 * past every check of the names inside it. A directory not there yet passes.
 */
export async function checkDirInside(root: string, dir: string): Promise<void> {
  const st = await fs.lstat(dir).catch(() => undefined);
  if (!st?.isSymbolicLink()) return;
  const [realRoot, realDir] = await Promise.all([realpathOfExisting(root), fs.realpath(dir).catch(() => undefined)]);
  if (realDir && inside(realRoot, realDir) && (await fs.stat(realDir)).isDirectory()) return;
  const rel = path.relative(root, dir); // one of the tree's own names
  throw new RefusedError(
    'outside-root',
    `${rel} is a link ${realDir ? `to ${escapeForMessage(realDir)}, outside ${root}` : 'to nothing'}; refusing to use it`,
    {
      hint: `make ${rel} a directory inside the tree`,
    },
  );
}

/** The synchronous, lexical half of `targetInside`, for pure planning code. */
export function joinInside(dir: string, ...parts: string[]): string {
  const target = path.resolve(dir, ...parts);
  if (!inside(dir, target) || target === path.resolve(dir)) throw outside(dir, parts);
  return target;
}

function outside(dir: string, parts: string[]): RefusedError {
  return new RefusedError(
    'outside-root',
    `refusing to write ${escapeForMessage(parts.join('/'))}: it resolves outside ${dir}`,
  );
}
