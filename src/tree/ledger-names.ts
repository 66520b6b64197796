import { promises as fs } from 'node:fs';

/**
 * The names the ledger holds records for (its `NAME.json` files), read off
 * the directory without opening a record: what a TAB offers as images, with
 * no schema to load. The records themselves are read by ledger.ts.
 */
export async function ledgerNames(ledgerDir: string): Promise<string[]> {
  return (await fs.readdir(ledgerDir))
    .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
    .map((n) => n.slice(0, -'.json'.length));
}
