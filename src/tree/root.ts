/**
 * Opening the container tree. Its names and layout are in the pure
 * `tree/names.ts`; this module adds what touches the disk.
 */
import { promises as fs } from 'node:fs';
import { mkdirShared } from '../util/files';
import * as path from 'node:path';
import { InputError } from '../errors';
import { commandLine } from '../emit/bash';
import { DEFAULT_ROOT, EASYBUILD, SIF_IMAGES, STATE, TESTED, treeAt, type Tree } from './names';
import { checkDirInside, inside } from '../validate/paths';

export { DEFAULT_ROOT, EASYBUILD, SIF_IMAGES, STATE, TESTED, checkName, treeAt, type Tree } from './names';

/** --root, else $LUMI_CONTAINER_REPOSITORY_ROOT (as LUMI's Lmod code reads it), else LUMI's path. */
export function resolveRoot(flag?: string, env = process.env): string {
  return path.resolve(flag || env.LUMI_CONTAINER_REPOSITORY_ROOT || DEFAULT_ROOT);
}

/** The tree at `root`, which must exist and be a tree (or an empty directory); its standard directories are made when missing. */
export async function openTree(root: string, create: boolean): Promise<Tree> {
  return layOut(root, create, false);
}

/**
 * A directory is a tree when it holds one of the tree's own directories; an
 * empty one may become one. Any other (a home directory, a checkout: a
 * wrong --root) is refused before anything is read or written in it.
 */
async function treeState(root: string): Promise<'tree' | 'empty' | 'other'> {
  const entries = await fs.readdir(root);
  if (entries.length === 0) return 'empty';
  return [TESTED, SIF_IMAGES, EASYBUILD, STATE].some((d) => entries.includes(d)) ? 'tree' : 'other';
}

async function checkIsTree(root: string): Promise<void> {
  if ((await treeState(root)) !== 'other') return;
  throw new InputError(
    'not-a-tree',
    `${root} is not a container tree: it holds none of ${TESTED}/, ${SIF_IMAGES}/, ${EASYBUILD}/ or ${STATE}/`,
    { hint: `check --root (or LUMI_CONTAINER_REPOSITORY_ROOT); ${commandLine(['sifkit', 'init', root])} makes it one` },
  );
}

async function layOut(root: string, create: boolean, init: boolean): Promise<Tree> {
  try {
    if (!(await fs.stat(root)).isDirectory()) throw new Error();
  } catch {
    // Never made here: a typo in --root must not start a second tree.
    throw new InputError('no-tree', `no container tree at ${root}`, {
      hint: `create one with ${commandLine(['sifkit', 'init', root])}, or give --root DIR or LUMI_CONTAINER_REPOSITORY_ROOT`,
    });
  }
  if (!init) await checkIsTree(root);
  const t = treeAt(root);
  // The tree's own directories are where every write goes: none may lead elsewhere.
  for (const d of [t.tested, t.sifImages, t.easybuild, t.state, t.ledger, t.quarantine]) await checkDirInside(root, d);
  if (create) await ensureLayout(t);
  return t;
}

/** Makes the tree's standard directories that are missing (stage does it once its checks passed). */
export async function ensureLayout(t: Tree): Promise<void> {
  for (const d of [t.tested, t.sifImages, t.easybuild, t.state, t.ledger]) await mkdirShared(d);
}

/**
 * Makes a tree at `root` (the directory and LUMI's layout), or opens the one
 * there; says whether it was new. The one way a tree comes into being
 * (`sifkit init`, `release --init`).
 */
export async function initTree(root: string): Promise<{ tree: Tree; created: boolean }> {
  const existed = await fs.stat(root).then(
    async (s) => {
      if (!s.isDirectory()) throw new InputError('not-a-directory', `${root} is not a directory`);
      // "Already a tree" only when it was one: an empty directory, or one of other files, is made one now.
      return (await treeState(root)) === 'tree';
    },
    () => false,
  );
  await mkdirShared(root);
  return { tree: await layOut(root, true, true), created: !existed };
}

// One containment check for the whole code base (validate/paths.ts).
export { inside };
