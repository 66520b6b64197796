/**
 * The quarantine retired images wait in: listing, `--purge` after the
 * grace period and a successful backup, and `restore`. Each step is one
 * rename or one unlink, so running it again finishes an interrupted one.
 */
import { commandLine, fillShell } from '../emit/bash';
import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError, OperationError, RefusedError, throwIfAborted } from '../errors';
import { fsyncPath } from '../util/files';
import { startChild } from '../util/process';
import type { Processes } from '../util/processes';
import { parseSifFileName } from '../recipe/names';
import { escapeForMessage, imageArgName, isValidName } from '../validate/names';
import { retiredRecordSchema, type RetiredRecord } from '../validate/schemas/quarantine';
import { ledgerPath, readLedger, sameStat, statKey, writeLedger, type StatKey } from './ledger';
import { mutate } from './mutate';
import type { Policy } from './policy';
import { EASYBUILD, TESTED, type Tree } from './root';

export function quarantinePaths(tree: Tree, dir: string, name: string): { file: string; manifest: string } {
  const q = path.join(tree.quarantine, dir);
  return { file: path.join(q, name), manifest: path.join(q, `${name}.retired.json`) };
}

/** Whether the file at `rel` in the tree still has the stat `key` (the ledger's "unchanged since hashed"). */
export function sameStatSync(tree: Tree, rel: string, key: StatKey | undefined): boolean {
  try {
    return sameStat(key, statKey(fsSync.statSync(path.join(tree.root, rel))));
  } catch {
    return false;
  }
}

/**
 * The stat of a quarantined file, but for its ctime: a rename of any name
 * of a hard-linked image moves the inode's ctime (retire moves each name in
 * turn), while a write to it moves its mtime.
 */
function sameContentStat(a: StatKey, b: StatKey): boolean {
  return a.size === b.size && a.ino === b.ino && a.mtimeMs === b.mtimeMs;
}

export interface Quarantined {
  dir: string;
  name: string;
  file: string;
  manifest?: RetiredRecord;
  isLink: boolean;
}

function readRetiredRecord(text: string): RetiredRecord | undefined {
  try {
    const r = retiredRecordSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export async function listQuarantine(tree: Tree): Promise<Quarantined[]> {
  const out: Quarantined[] = [];
  for (const dir of [TESTED, EASYBUILD]) {
    const q = path.join(tree.quarantine, dir);
    let names: string[] = [];
    try {
      names = await fs.readdir(q);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => n.endsWith('.sif'))) {
      // A damaged record counts as a missing one (the file's own time is used), never as a crash.
      const manifest = await fs
        .readFile(path.join(q, `${name}.retired.json`), 'utf8')
        .then(readRetiredRecord, () => undefined);
      out.push({
        dir,
        name,
        file: path.join(q, name),
        manifest,
        isLink: (await fs.lstat(path.join(q, name))).isSymbolicLink(),
      });
    }
  }
  return out;
}

function runBackup(
  template: string,
  q: Quarantined,
  signal?: AbortSignal,
  processes?: Processes,
): Promise<{ ok: boolean; message: string }> {
  // One pass, each placeholder one quoted word: a file name holding `{name}` stays a file name.
  const cmd = fillShell(template, { path: q.file, name: q.name, dir: q.dir }, "the policy's backup_command");
  return startChild('sh', ['-c', cmd], { signal, label: 'backup', processes }).done.then(
    () => ({ ok: true, message: 'backed up' }),
    (e: Error) => ({ ok: false, message: e.message }),
  );
}

export interface PurgeResult {
  deleted: string[];
  /** `grace`: not old enough yet (as it should be); `backup-failed`: due, but its backup failed, so kept. */
  kept: Array<{ name: string; kind: 'grace' | 'backup-failed'; why: string }>;
}

/** The refusal of a purge that kept files whose backup failed (by kind, never by their text); undefined when none. */
export function purgeError(r: PurgeResult): OperationError | undefined {
  const unsaved = r.kept.filter((k) => k.kind === 'backup-failed');
  if (!unsaved.length) return undefined;
  return new OperationError(
    'backup-failed',
    `retire --purge kept ${unsaved.length} quarantined file(s): ${unsaved[0].name}: ${unsaved[0].why}`,
    { hint: "fix the policy's backup_command; nothing was deleted without its backup" },
  );
}

export async function purge(
  tree: Tree,
  policy: Policy,
  opts: { graceDays?: number; now?: number; signal?: AbortSignal; processes?: Processes } = {},
): Promise<PurgeResult> {
  // An empty quarantine (or none at all): nothing to do, nothing made.
  if (!(await listQuarantine(tree)).length) return { deleted: [], kept: [] };
  return mutate(
    tree,
    'purge',
    opts.signal,
    async (changes) => {
      const grace = opts.graceDays ?? policy.quarantineDays;
      const now = opts.now ?? Date.now();
      const result: PurgeResult = { deleted: [], kept: [] };
      const files: Array<{ path: string; op: string }> = [];
      for (const q of await listQuarantine(tree)) {
        throwIfAborted(opts.signal);
        const since = q.manifest ? Date.parse(q.manifest.retiredAt) : (await fs.lstat(q.file)).mtimeMs;
        const days = (now - since) / 86_400_000;
        if (days < grace) {
          result.kept.push({
            name: `${q.dir}/${q.name}`,
            kind: 'grace',
            why: `in quarantine ${days.toFixed(1)} of ${grace} days`,
          });
          continue;
        }
        // A link into another tree has nothing of ours to back up; removing it removes only the link.
        if (policy.backupCommand && !q.isLink) {
          const b = await runBackup(policy.backupCommand, q, opts.signal, opts.processes);
          if (!b.ok) {
            result.kept.push({ name: `${q.dir}/${q.name}`, kind: 'backup-failed', why: b.message });
            files.push({ path: `${q.dir}/${q.name}`, op: `kept: ${b.message}` });
            continue;
          }
        }
        // Unlinking one name of a hard-linked image moves the inode's ctime: its names the ledger vouched for stay vouched.
        const entry = await readLedger(tree, q.name);
        const vouched = entry ? Object.keys(entry.hashed).filter((r) => sameStatSync(tree, r, entry.hashed[r])) : [];
        // The record first: a stop between the two leaves the image, which a rerun purges (judged by its own
        // time, never later than by the record's), never a record of nothing that no purge would list.
        await fs.rm(`${q.file}.retired.json`, { force: true });
        await fs.rm(q.file);
        changes.made();
        await fsyncPath(path.dirname(q.file));
        // The checksum record goes with the last copy of the image.
        const elsewhere = [TESTED, EASYBUILD].some((d) => fsSync.existsSync(path.join(tree.root, d, q.name)));
        if (!elsewhere) await fs.rm(ledgerPath(tree, q.name), { force: true });
        else if (entry && vouched.length) {
          for (const r of vouched) entry.hashed[r] = statKey(fsSync.statSync(path.join(tree.root, r)));
          await writeLedger(tree, entry);
        }
        result.deleted.push(`${q.dir}/${q.name}`);
        files.push({ path: `${q.dir}/${q.name}`, op: 'purged' });
      }
      return { value: result, files };
    },
    { resume: 'run the same command again to finish it' },
  );
}

/** The images `matches` takes that are in the tree's own directories (not in the quarantine). */
async function inTree(
  tree: Tree,
  matches: (name: string) => boolean,
  dir?: string,
): Promise<Array<{ dir: string; name: string }>> {
  const out: Array<{ dir: string; name: string }> = [];
  for (const d of dir ? [dir] : [TESTED, EASYBUILD])
    for (const n of await fs.readdir(path.join(tree.root, d)).catch(() => [] as string[]))
      if (n.endsWith('.sif') && !n.startsWith('.') && matches(n)) out.push({ dir: d, name: n });
  return out;
}

/**
 * The ledger vouches again for a restored image its record says was left
 * untouched in the quarantine (and for its other names it vouched for
 * before the move); then its record leaves the quarantine. The record goes
 * last, so a restore stopped after its move is finished by running it again.
 */
async function finishRestore(tree: Tree, dir: string, name: string, vouched: string[]): Promise<void> {
  const rel = `${dir}/${name}`;
  const target = path.join(tree.root, rel);
  const { manifest } = quarantinePaths(tree, dir, name);
  const record = await fs.readFile(manifest, 'utf8').then(readRetiredRecord, () => undefined);
  const entry = await readLedger(tree, name);
  const untouched = record?.stat !== undefined && sameContentStat(record.stat, statKey(fsSync.statSync(target)));
  if (entry && (untouched || vouched.length)) {
    const ino = fsSync.statSync(target).ino;
    // Another vouched name of the same inode vouches for this one too.
    const again = untouched || vouched.some((r) => entry.hashed[r].ino === ino) ? [rel, ...vouched] : vouched;
    for (const r of again) entry.hashed[r] = statKey(fsSync.statSync(path.join(tree.root, r)));
    await writeLedger(tree, entry);
  }
  await fs.rm(manifest, { force: true });
}

export async function restore(
  tree: Tree,
  nameArg: string,
  opts: { dir?: string; signal?: AbortSignal } = {},
): Promise<{ restored: string; already?: boolean }> {
  // A dockerhash (what status, module names and retire's plan show) or a file name.
  const byHash: boolean = isValidName('dockerhash', nameArg);
  const name: string = byHash
    ? nameArg
    : imageArgName(nameArg, 'restore NAME', ['a dockerhash (12 hex digits, as status shows it)']);
  if (opts.dir !== undefined && opts.dir !== TESTED && opts.dir !== EASYBUILD)
    throw new InputError('bad-dir', `--dir ${escapeForMessage(opts.dir)} is not ${TESTED} or ${EASYBUILD}`);
  const matchesName = (n: string) => (byHash ? parseSifFileName(n)?.dockerhash === name : n === name);
  /** What is in the quarantine to restore; else the image already back in the tree (a rerun), found once. */
  const find = async (): Promise<{ hits: Quarantined[] } | { back: { dir: string; name: string } }> => {
    const hits = (await listQuarantine(tree)).filter((q) => matchesName(q.name) && (!opts.dir || q.dir === opts.dir));
    const where = `the quarantine${opts.dir ? ` of ${opts.dir}` : ''}`;
    if (!hits.length) {
      const back = await inTree(tree, matchesName, opts.dir);
      // One image, in one directory or both: the one a stopped restore left its record for, else the first.
      if (back.length && back.every((b) => b.name === back[0].name))
        return {
          back: back.find((b) => fsSync.existsSync(quarantinePaths(tree, b.dir, b.name).manifest)) ?? back[0],
        };
      throw new InputError(
        'not-quarantined',
        byHash ? `no image with dockerhash ${name} is in ${where}` : `${name} is not in ${where}`,
        {
          hint: `${commandLine(['sifkit', 'status', '--root', tree.root])} lists the images in the tree; retired ones are under ${path.relative(tree.root, tree.quarantine)}/`,
        },
      );
    }
    const names = [...new Set(hits.map((q) => q.name))];
    if (names.length > 1)
      throw new InputError(
        'ambiguous',
        `dockerhash ${name} is in ${names.length} quarantined images: ${names.join(', ')}`,
        {
          hint: 'give the file name',
        },
      );
    if (hits.length > 1)
      throw new InputError('ambiguous', `${names[0]} is quarantined from both ${TESTED} and ${EASYBUILD}; give --dir`);
    return { hits };
  };
  // Bad names are refused before the lock is taken; found again under it.
  await find();
  return mutate<{ restored: string; already?: boolean }>(tree, 'restore', opts.signal, async (changes) => {
    const found = await find();
    if ('back' in found) {
      // Restored already: a run stopped after its move left the quarantine's record; this finishes it.
      const rel = `${found.back.dir}/${found.back.name}`;
      const left = fsSync.existsSync(quarantinePaths(tree, found.back.dir, found.back.name).manifest);
      if (left) await finishRestore(tree, found.back.dir, found.back.name, []);
      return {
        value: { restored: rel, already: true },
        files: left ? [{ path: rel, op: 'restore finished' }] : [],
      };
    }
    const q = found.hits[0];
    const target = path.join(tree.root, q.dir, q.name);
    if (fsSync.existsSync(target))
      throw new RefusedError('exists', `${q.dir}/${q.name} exists again; not overwriting it`);
    const rel = `${q.dir}/${q.name}`;
    const entry = await readLedger(tree, q.name);
    // The rename moves the inode's ctime: the names of a hard-linked image the ledger vouched for stay vouched.
    const vouched = entry
      ? Object.keys(entry.hashed).filter((r) => r !== rel && sameStatSync(tree, r, entry.hashed[r]))
      : [];
    await fs.rename(q.file, target);
    changes.made(() => fs.rename(target, q.file));
    await fsyncPath(path.dirname(target));
    await finishRestore(tree, q.dir, q.name, vouched);
    return {
      value: { restored: rel },
      files: [{ path: rel, op: 'restored from quarantine' }],
    };
  });
}
