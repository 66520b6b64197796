import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from './util/package';

export function sifkitVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
}

/** Which sifkit rendered a definition; recorded in its labels, never hashed. */
export interface Provenance {
  sifkitVersion: string;
  /** The source revision of sifkit and the defs (git commit), or "unknown". */
  revision: string;
}

let cached: Provenance | undefined;

/**
 * sifkit's version and source revision: SIFKIT_REVISION if set (CI, release
 * builds), else the git commit of the checkout sifkit runs from, else
 * "unknown". Asked once per process.
 */
export function provenance(): Provenance {
  if (cached) return cached;
  let revision = process.env.SIFKIT_REVISION ?? '';
  if (!revision) {
    try {
      revision = execFileSync('git', ['rev-parse', 'HEAD'], {
        cwd: packageRoot(),
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 5000,
      })
        .toString()
        .trim();
    } catch {
      revision = 'unknown';
    }
  }
  cached = { sifkitVersion: sifkitVersion(), revision: /^[0-9a-zA-Z._-]+$/.test(revision) ? revision : 'unknown' };
  return cached;
}
