/**
 * `sifkit verify --deep --reconvert`: every SIF in tested-containers is
 * converted again from the source it names and compared byte for byte.
 * Conversion is reproducible, so a difference means the file is not the
 * conversion of the image its name and labels claim. A source that is no
 * longer there (the image removed from the engine, the archive moved)
 * cannot prove anything either way: such images are listed as unchecked,
 * not as problems.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isSifkitError, throwIfAborted } from '../errors';
import type { Tree } from '../tree/root';
import type { Problem } from '../tree/verify';
import { isValidName } from '../validate/names';
import { reconvertAndCompare } from './reconvert';

export interface ReconvertRow {
  path: string;
  source?: string;
  result: 'identical' | 'differs' | 'source unavailable';
  detail?: string;
}

export async function reconvertTree(
  tree: Tree,
  opts: { signal?: AbortSignal; workDir?: string } = {},
): Promise<{ rows: ReconvertRow[]; problems: Problem[] }> {
  const rows: ReconvertRow[] = [];
  const problems: Problem[] = [];
  const names = (await fs.readdir(tree.tested).catch(() => [] as string[]))
    .filter((n) => n.endsWith('.sif') && isValidName('sif file', n))
    .sort();
  for (const name of names) {
    throwIfAborted(opts.signal);
    const rel = path.join(path.basename(tree.tested), name);
    try {
      const r = await reconvertAndCompare(path.join(tree.tested, name), undefined, {
        signal: opts.signal,
        workDir: opts.workDir ?? os.tmpdir(),
      });
      if (r.identical) rows.push({ path: rel, source: r.source, result: 'identical' });
      else {
        const detail = `${r.differing} bytes differ from a fresh conversion of ${r.source}, the first at offset ${r.firstDifference}`;
        rows.push({ path: rel, source: r.source, result: 'differs', detail });
        problems.push({ kind: 'not-its-conversion', path: rel, message: detail, repairable: false });
      }
    } catch (e) {
      // Bad input here is the source being gone or unnamed: nothing proven, nothing wrong.
      if (isSifkitError(e) && e.exitCode === 2)
        rows.push({ path: rel, result: 'source unavailable', detail: e.message });
      else throw e;
    }
  }
  return { rows, problems };
}
