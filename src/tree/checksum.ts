import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { sha256File } from '../util/files';
import { readLedger, sameStat, statKey, type LedgerEntry } from './ledger';
import { TESTED, type Tree } from './root';

export type ChecksumState = 'ok' | 'ok-cached' | 'mismatch' | 'missing' | 'unrecorded';

/**
 * Whether the file at `rel` still has the ledger's content. A stat equal
 * to the one recorded at hashing time is trusted; otherwise (or `deep`)
 * the file is read. Updates `entry.hashed` when it re-hashed a good file.
 */
export async function checkFile(
  tree: Tree,
  entry: LedgerEntry | undefined,
  rel: string,
  deep = false,
  signal?: AbortSignal,
): Promise<ChecksumState> {
  let st;
  try {
    st = await fs.stat(path.join(tree.root, rel));
  } catch {
    return 'missing';
  }
  if (!entry) return 'unrecorded';
  if (st.size !== entry.size) return 'mismatch';
  const key = statKey(st);
  if (!deep && sameStat(entry.hashed[rel], key)) return 'ok-cached';
  const sha = await sha256File(path.join(tree.root, rel), signal);
  if (sha !== entry.sha256) return 'mismatch';
  entry.hashed[rel] = key;
  return 'ok';
}

/**
 * Is `name` staged: in tested-containers with a ledger record its content
 * still matches. The record when it is, else undefined.
 */
export async function stagedEntry(tree: Tree, name: string, signal?: AbortSignal): Promise<LedgerEntry | undefined> {
  const entry = await readLedger(tree, name);
  const state = await checkFile(tree, entry, `${TESTED}/${name}`, false, signal);
  return state === 'ok' || state === 'ok-cached' ? entry : undefined;
}
