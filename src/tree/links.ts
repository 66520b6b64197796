/**
 * The links in sif-images/: `<stem>.sif`, each pointing at one image of
 * the tree. "Which image does this stem's link point at" is answered here
 * for every reader (status, verify, promote, retire, the test gate, the
 * release's promote stage).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { RefusedError, errnoCode } from '../errors';
import { EASYBUILD, SIF_IMAGES, TESTED, type Tree } from './names';

/** The link name for a stem: `sif-images/<stem>.sif`. */
export function linkName(stem: string): string {
  return `${stem}.sif`;
}

/** What a link's text names. */
export interface LinkTarget {
  /** The link's text, as stored. */
  target: string;
  /** The image's file name (the last component). */
  image: string;
  /** The tree directory it lies in, when it is one of the tree's own (tested-containers or easybuild-sif-images). */
  dir?: typeof TESTED | typeof EASYBUILD;
}

/** What the text of a link in sif-images/ points at. Pure. */
export function linkTargetOf(tree: Tree, target: string): LinkTarget {
  const resolved = path.resolve(tree.sifImages, target);
  const dir = path.basename(path.dirname(resolved));
  const inTree = path.dirname(path.dirname(resolved)) === tree.root && (dir === TESTED || dir === EASYBUILD);
  return { target, image: path.basename(resolved), dir: inTree ? dir : undefined };
}

/**
 * The link `sif-images/<name>`: what it points at, or undefined when there
 * is none. A file there that is not a link is refused: nobody replaces it.
 */
export async function readLinkIn(tree: Tree, name: string): Promise<LinkTarget | undefined> {
  const at = path.join(tree.sifImages, name);
  try {
    return linkTargetOf(tree, await fs.readlink(at));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    if (errnoCode(e) === 'EINVAL')
      throw new RefusedError('not-a-link', `${SIF_IMAGES}/${name} exists and is not a symbolic link; not replacing it`);
    throw e;
  }
}

/** The stem's link: what it points at, or undefined when the stem has none. */
export function stemLink(tree: Tree, stem: string): Promise<LinkTarget | undefined> {
  return readLinkIn(tree, linkName(stem));
}

/**
 * Whether image `name` is already where a promote puts it: its file in
 * easybuild-sif-images/ (`file`), the stem's link pointing at it (`link`).
 */
export async function isPromoted(
  tree: Tree,
  name: string,
  stem: string,
  want: { file: boolean; link: boolean },
): Promise<boolean> {
  if (
    want.file &&
    !(await fs.stat(path.join(tree.easybuild, name)).then(
      (s) => s.isFile(),
      () => false,
    ))
  )
    return false;
  return !want.link || (await stemLink(tree, stem).catch(() => undefined))?.image === name;
}
