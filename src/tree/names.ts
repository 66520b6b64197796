/**
 * The container tree's names and layout: LUMI's three directories under
 * one root, plus our own state in `.sifkit/` (reference §3). Pure, so the
 * retention policy and the retirement plan can name directories without
 * importing the module that opens trees.
 */
import * as path from 'node:path';
import { checkName as checkNameRule } from '../validate/names';

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
  /** Test results of images tested against this tree (`test --root`), before and after staging. */
  results: string;
  /** Logs and Slurm job directories of work done for this tree (release, test --root). */
  logs: string;
  jobs: string;
}

/** Where everything of the tree at `root` lives; touches nothing. */
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
    results: path.join(state, 'test-results'),
    logs: path.join(state, 'logs'),
    jobs: path.join(state, 'slurm'),
  };
}

/** An image's file name in the tree (`<stem>-dockerhash-<12 hex>.sif`), by the one name rule. */
export function checkName(name: string, source = 'image NAME'): string {
  return checkNameRule('sif file', name, source);
}
