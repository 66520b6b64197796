/**
 * What a build is served, summed up in stable values: the list of files,
 * one digest over their names and contents (a build argument that changes
 * exactly when the licensed files do), and a port derived from it, so two
 * builds of the same files pass the same arguments and share the cache.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { sha256File } from '../util/files';
import { escapeForMessage } from '../validate/names';

/**
 * Regular files under dir, relative, sorted (byte order) so every digest
 * over them is stable. Anything else is refused in one line: a symbolic
 * link is served as its target (when that lies inside), so the name a
 * step fetches and the name whose role and bytes the scan judges would
 * differ, and a link leading out is a file the scan never reads; a FIFO or
 * device is not a file to serve. (Hard links are regular files: each name
 * is listed and judged by its own role.)
 */
export async function listServedFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listServedFiles(dir, r)));
    else if (e.isFile()) out.push(r);
    else
      throw new InputError(
        'bad-served-file',
        `served file ${escapeForMessage(r)} in ${escapeForMessage(dir)} is ${e.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: serve the file itself`,
      );
  }
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** sha256 over `name NUL sha256(content) LF` for each file, in sorted order. */
export function digestOfServed(files: { rel: string; sha256: string }[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)))
    h.update(`${f.rel}\0${f.sha256}\n`);
  return h.digest('hex');
}

export async function servedFilesDigest(dir: string, signal?: AbortSignal): Promise<string> {
  const files = [];
  for (const rel of await listServedFiles(dir))
    files.push({ rel, sha256: await sha256File(path.join(dir, rel), signal) });
  return digestOfServed(files);
}

/**
 * Ports 20000-31999: below Linux's ephemeral range (32768 and up), so an
 * outgoing connection rarely holds the derived port.
 */
export const DERIVED_PORT_BASE = 20000;
export const DERIVED_PORT_SPAN = 12000;

export function derivePort(servedDigest: string): number {
  return DERIVED_PORT_BASE + (parseInt(servedDigest.slice(0, 8), 16) % DERIVED_PORT_SPAN);
}

/**
 * The build arguments a build served these files passes: the one home of
 * their values, for the build and for the plan that keys its steps by
 * them (pipeline/build-order.ts), so the two agree.
 */
export function servedBuildArgs(digest: string, port: number | string): Record<string, string> {
  return { SERVER_PORT: String(port), SERVED_DIGEST: digest };
}
