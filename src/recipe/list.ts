/**
 * Where the recipes are and which there are: a directory listing, apart
 * from the loader (YAML and the schema) so a TAB can list recipes without
 * loading either.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { shippedDir } from '../util/package';

/** The docker-defs directory shipped with sifkit, unless SIFKIT_DEFS names another. */
export function defaultDefsRoot(): string {
  return shippedDir('docker-defs', 'SIFKIT_DEFS');
}

export async function listRecipes(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (e.isDirectory() && (await exists(path.join(root, e.name, 'recipe.yaml')))) out.push(e.name);
  }
  return out.sort();
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}
