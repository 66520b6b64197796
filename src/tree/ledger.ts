/**
 * The checksum ledger: one small JSON file per image under `.sifkit/ledger/`,
 * written atomically. Besides the sha256 it keeps, per path, the stat the
 * hash was taken at (size, inode, mtime, ctime): when those still match the
 * file is unchanged and need not be read again (as git's index does), so
 * promote and status stay O(1) per image whatever its size.
 */
import * as fsSync from 'node:fs';
import { promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import { errnoCode } from '../errors';
import { writeFileAtomic } from '../util/files';
import type { Tree } from './root';

export interface StatKey {
  size: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
}

export interface LedgerEntry {
  name: string;
  sha256: string;
  size: number;
  stem: string;
  dockerhash: string;
  imageCreated?: string;
  recipe?: string;
  params: Record<string, string>;
  labels: Record<string, string>;
  stagedAt: string;
  stagedBy: string;
  /** Stat at hashing time, by path relative to the root. */
  hashed: Record<string, StatKey>;
  archive?: { name: string; sha256: string; size: number };
  /** Test runs recorded with the image (issue 8). */
  tests?: unknown[];
}

export function statKey(st: Stats): StatKey {
  return { size: st.size, ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

export function sameStat(a: StatKey | undefined, b: StatKey): boolean {
  return !!a && a.size === b.size && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

export function ledgerPath(tree: Tree, name: string): string {
  return path.join(tree.ledger, `${name}.json`);
}

export async function readLedger(tree: Tree, name: string): Promise<LedgerEntry | undefined> {
  try {
    return JSON.parse(await fs.readFile(ledgerPath(tree, name), 'utf8')) as LedgerEntry;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

export async function writeLedger(tree: Tree, entry: LedgerEntry): Promise<void> {
  await writeFileAtomic(ledgerPath(tree, entry.name), JSON.stringify(entry, null, 2) + '\n');
}

export async function listLedger(tree: Tree): Promise<LedgerEntry[]> {
  let names: string[];
  try {
    names = (await fs.readdir(tree.ledger)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  } catch {
    return [];
  }
  // Synchronous: thousands of tiny reads are quicker without the thread pool.
  const out: LedgerEntry[] = [];
  for (const n of names) {
    try {
      out.push(JSON.parse(fsSync.readFileSync(path.join(tree.ledger, n), 'utf8')) as LedgerEntry);
    } catch {
      /* a record being replaced, or unreadable: verify reports the file */
    }
  }
  return out;
}
