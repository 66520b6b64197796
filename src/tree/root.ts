/**
 * The container tree: LUMI's three directories under one root, plus our
 * own state in `.sifkit/`. Names and promises: reference §3.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { checkName as checkNameRule } from '../validate/names';
import { inside } from '../validate/paths';

export const DEFAULT_ROOT = '/appl/local/containers';
export const TESTED = 'tested-containers';
export const SIF_IMAGES = 'sif-images';
export const EASYBUILD = 'easybuild-sif-images';
export const STATE = '.sifkit';

export interface Tree {
  root: string;
  tested: string;
  sifImages: string;
  easybuild: string;
  state: string;
  ledger: string;
  lock: string;
  audit: string;
  quarantine: string;
}

/** --root, else $LUMI_CONTAINER_REPOSITORY_ROOT (as LUMI's Lmod code reads it), else LUMI's path. */
export function resolveRoot(flag?: string, env = process.env): string {
  return path.resolve(flag || env.LUMI_CONTAINER_REPOSITORY_ROOT || DEFAULT_ROOT);
}

export function treeAt(root: string): Tree {
  const state = path.join(root, STATE);
  return {
    root,
    tested: path.join(root, TESTED),
    sifImages: path.join(root, SIF_IMAGES),
    easybuild: path.join(root, EASYBUILD),
    state,
    ledger: path.join(state, 'ledger'),
    lock: path.join(state, 'lock'),
    audit: path.join(state, 'audit.log'),
    quarantine: path.join(state, 'quarantine'),
  };
}

/** The tree at `root`, which must exist; its standard directories are made when missing. */
export async function openTree(root: string, create: boolean): Promise<Tree> {
  try {
    if (!(await fs.stat(root)).isDirectory()) throw new Error();
  } catch {
    throw new InputError('no-tree', `no container tree at ${root}`, { hint: `create the directory, or give --root DIR or LUMI_CONTAINER_REPOSITORY_ROOT` });
  }
  const t = treeAt(root);
  if (create) for (const d of [t.tested, t.sifImages, t.easybuild, t.state, t.ledger]) await fs.mkdir(d, { recursive: true, mode: 0o755 });
  return t;
}

/** An image's file name in the tree (`<stem>-dockerhash-<12 hex>.sif`), by the one name rule. */
export function checkName(name: string, source = 'image NAME'): string {
  return checkNameRule('sif file', name, source);
}

// One containment check for the whole code base (validate/paths.ts).
export { inside };
