/**
 * A hint for a file system refusal that names who sifkit ran as and a
 * command that shows why, on the deepest part of the path that exists
 * (the parent of a directory it could not make, or the file itself):
 * "permission denied" alone does not say that the tree belongs to
 * another user, or that the disk is mounted read-only.
 */
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commandLine, errnoCode } from '../index';

/** Who this process is, as `id -un` would say (a uid without a passwd entry stays a number). */
export function runningAs(): string {
  const uid = process.getuid?.();
  try {
    return `${os.userInfo().username} (uid ${uid})`;
  } catch {
    return `uid ${uid}`;
  }
}

/** The deepest existing directory or file on `p`'s way up. */
function existingPart(p: string): string {
  let at = path.resolve(p);
  while (!existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  return at;
}

/** The hint for a system error carrying a path; undefined for any other error. */
export function systemHint(e: unknown): string | undefined {
  const code = errnoCode(e);
  const p = (e as { path?: unknown } | undefined)?.path;
  if (typeof p !== 'string' || !code) return undefined;
  const at = existingPart(p);
  try {
    return hintFor(code, at);
  } catch {
    return undefined; // a path no command line can hold (the emitter refused it): the message alone
  }
}

function hintFor(code: string, at: string): string | undefined {
  if (code === 'EACCES' || code === 'EPERM')
    return `sifkit ran as ${runningAs()}; ${commandLine(['namei', '-l', at])} shows each directory's owner and mode: run as a user who may write there, or ask for access`;
  if (code === 'EROFS')
    return `${commandLine(['findmnt', '-T', at])} shows the mount: read-only file systems take no changes`;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return `${commandLine(['df', '-h', at])} shows the space left: free some, then run the command again`;
  return undefined;
}
