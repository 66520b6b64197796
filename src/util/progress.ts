/**
 * How far a long write has got, seen from outside the code that writes:
 * the bytes in this process's temporary files in a directory (tempNameFor
 * names them with the host and pid). A command reports these while its
 * work runs, without threading a callback through every backend.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { TEMP_MARKER } from './files';
import { hostTag } from './process';

export async function ownTempBytes(dir: string): Promise<number> {
  const mine = `${TEMP_MARKER}${hostTag()}-${process.pid}-`;
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  let total = 0;
  for (const n of names.filter((x) => x.includes(mine)))
    total += await fs.stat(path.join(dir, n)).then(
      (st) => (st.isFile() ? st.size : 0),
      () => 0,
    );
  return total;
}
