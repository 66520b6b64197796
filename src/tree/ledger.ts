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
import { InputError, errnoCode } from '../errors';
import { writeFileAtomic } from '../util/files';
import { checkName, escapeForMessage } from '../validate/names';
import { joinInside } from '../validate/paths';
import { parseJsonDocument } from '../validate/schema';
import { ledgerEntrySchema, type LedgerEntry, type StatKey } from '../validate/schemas/ledger';
import { ledgerNames } from './ledger-names';
import type { Tree } from './root';

export type { LedgerEntry, StatKey };

export function statKey(st: Stats): StatKey {
  return { size: st.size, ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

export function sameStat(a: StatKey | undefined, b: StatKey): boolean {
  return !!a && a.size === b.size && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/**
 * Where `name`'s record lives. Lenient on the name's shape (a hand-placed
 * file found in the tree must still be findable and removable), strict on
 * place: one file name, inside the ledger directory. Records are only
 * written for names that pass the rule (writeLedger).
 */
export function ledgerPath(tree: Tree, name: string): string {
  if (name.includes('/'))
    throw new InputError('bad-name', `ledger record: ${escapeForMessage(name)} is not a file name`);
  return joinInside(tree.ledger, `${name}.json`);
}

/** A record's text checked: the schema, and that it is the record of the file it is in. */
export function parseLedgerEntry(text: string, file: string, name: string): LedgerEntry {
  const entry = parseJsonDocument(ledgerEntrySchema, text, `ledger record ${file}`, 'bad-ledger');
  if (entry.name !== name)
    throw new InputError('bad-ledger', `ledger record ${file}: name: expected ${name}, found ${entry.name}`);
  return entry;
}

const REPAIR_HINT = 'run sifkit verify to see every damaged record; restage the image to write it again';

/** The record of `name`, undefined when there is none; a damaged one is an InputError naming the field. */
export async function readLedger(tree: Tree, name: string): Promise<LedgerEntry | undefined> {
  const file = ledgerPath(tree, name);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return parseLedgerEntry(text, file, name);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(e.code, e.message, { hint: REPAIR_HINT });
    throw e;
  }
}

export async function writeLedger(tree: Tree, entry: LedgerEntry): Promise<void> {
  checkName('sif file', entry.name, 'ledger record');
  await writeFileAtomic(ledgerPath(tree, entry.name), JSON.stringify(entry, null, 2) + '\n');
}

export interface LedgerScan {
  entries: LedgerEntry[];
  /** Records that could not be read or do not pass the schema, each with its one-line reason. */
  damaged: Array<{ file: string; message: string }>;
}

/** Every record, the damaged ones set apart (never thrown: one bad record must not hide the others). */
export async function scanLedger(tree: Tree): Promise<LedgerScan> {
  const scan: LedgerScan = { entries: [], damaged: [] };
  let names: string[];
  try {
    names = await ledgerNames(tree.ledger);
  } catch {
    return scan;
  }
  // Synchronous: thousands of tiny reads are quicker without the thread pool.
  for (const n of names) {
    const file = path.join(tree.ledger, `${n}.json`);
    try {
      scan.entries.push(parseLedgerEntry(fsSync.readFileSync(file, 'utf8'), file, n));
    } catch (e) {
      scan.damaged.push({
        file,
        message:
          e instanceof InputError
            ? e.message
            : `ledger record ${file}: unreadable (${errnoCode(e) ?? 'unknown error'})`,
      });
    }
  }
  return scan;
}

/** The readable records; verify reports the damaged ones (see scanLedger). */
export async function listLedger(tree: Tree): Promise<LedgerEntry[]> {
  return (await scanLedger(tree)).entries;
}
