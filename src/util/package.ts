import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * sifkit's package root: the nearest directory above this module that holds
 * package.json (src/util under ts-jest, dist/src/util when built).
 */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/** A data directory shipped with sifkit (docker-defs, pipelines), unless the env names another. */
export function shippedDir(name: string, envVar: string): string {
  const fromEnv = process.env[envVar];
  return fromEnv ? path.resolve(fromEnv) : path.join(packageRoot(), name);
}
