/**
 * The answer to a TAB (`sifkit __complete WORD...`), from a small entry
 * point: node's start and this module, not the commands and the library
 * behind them (5.8 s at load 24 when every TAB loaded the whole CLI).
 *
 * The command tree comes from a cache file in the user's cache directory,
 * keyed by the content of the CLI's own files: any change to a command,
 * flag or argument changes the key, so the cache is never stale. On a miss
 * (the first TAB after an install or a build) the whole program is loaded
 * once, its tree written for the next TAB. Nothing reaches the terminal but
 * candidates: a TAB never prints an error.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { complete, isCommandTree, treeOf, type CommandSpec } from './complete';
import { diskSources } from './complete-sources';

/** The CLI's own files, hashed: the tree can change only when one of them does. */
async function treeKey(): Promise<string> {
  const ext = path.extname(__filename);
  const names = (await fs.readdir(__dirname)).filter((n) => n.endsWith(ext)).sort();
  const h = createHash('sha256').update(__dirname);
  for (const n of names) h.update(`\0${n}\0`).update(await fs.readFile(path.join(__dirname, n)));
  return h.digest('hex').slice(0, 32);
}

/** Where the tree for `key` is kept: the user's own cache directory, never a shared one. */
export function treeCacheFile(key: string, env = process.env): string {
  const base =
    env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'sifkit', `commands-${key}.json`);
}

/** The command tree: from the cache, else from the whole program (then cached). */
export async function commandTree(): Promise<CommandSpec[]> {
  const file = treeCacheFile(await treeKey());
  const cached: unknown = await fs
    .readFile(file, 'utf8')
    .then((t) => JSON.parse(t) as unknown)
    .catch(() => undefined);
  if (isCommandTree(cached)) return cached;
  const { buildProgram } = await import('./program');
  const tree = treeOf(buildProgram());
  // Best effort, and whole or not at all: written aside, then renamed into place.
  const tmp = `${file}.${process.pid}.tmp`;
  await fs
    .mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
    .then(() => fs.writeFile(tmp, JSON.stringify(tree), { mode: 0o600 }))
    .then(() => fs.rename(tmp, file))
    .catch(() => fs.rm(tmp, { force: true }));
  return tree;
}

/** Candidates one per line on stdout; never an error on the user's terminal. */
export async function answerCompletion(words: string[]): Promise<void> {
  const lines = await commandTree()
    .then((tree) => complete(tree, words, diskSources))
    .catch(() => [] as string[]);
  // Unwritable output (a full disk) is exit 1, still without a word on the terminal; a closed pipe is the shell's choice.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') process.exitCode = 1;
  });
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
}
