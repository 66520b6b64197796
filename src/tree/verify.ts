/**
 * `verify`: everything that can be wrong with a tree, and `--repair` for
 * what is safe to fix (our own leftovers, permissions, the ledger's own
 * records). It never deletes or rewrites an image or a link.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseSifFileName } from '../recipe/names';
import { TEMP_MARKER, pathExists } from '../util/files';
import { hostTag, pidAlive } from '../util/process';
import { checkFile } from './checksum';
import { sameStat, scanLedger, ledgerPath, statKey, writeLedger, type LedgerEntry } from './ledger';
import { clearDeadBreakLock, describeLock, lockHolder } from './lock';
import { checkTested, loadTrustPolicy, requireBuildSignature, testedSignaturePath } from './trust';
import { ExitCode, isSifkitError } from '../errors';
import { EASYBUILD, SIF_IMAGES, STATE, TESTED, inside, type Tree } from './root';
import { linkName, readLinkIn } from './links';

export type ProblemKind =
  | 'dangling-link'
  | 'escaping-link'
  | 'not-a-link'
  | 'link-name'
  | 'checksum-mismatch'
  | 'checksum-unrecorded'
  | 'checksum-stale'
  | 'unreadable'
  | 'temp-leftover'
  | 'bad-name'
  | 'ledger-orphan'
  | 'retired-orphan'
  | 'ledger-damaged'
  | 'stale-lock'
  | 'not-its-conversion'
  | 'signature';

export interface Problem {
  kind: ProblemKind;
  path: string;
  message: string;
  repairable: boolean;
  repaired?: string;
}

export interface VerifyOptions {
  deep?: boolean;
  repair?: boolean;
  signal?: AbortSignal;
}

/** A temp name of a process on this host that still runs: its work in progress, not a leftover. */
function liveTemp(name: string): boolean {
  const rest = name.slice(name.indexOf(TEMP_MARKER) + TEMP_MARKER.length);
  const prefix = `${hostTag()}-`;
  if (!rest.startsWith(prefix)) return false;
  const m = /^(\d+)-[0-9a-f]{8}$/.exec(rest.slice(prefix.length));
  return !!m && pidAlive(Number(m[1]));
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch {
    return [];
  }
}

/**
 * A development clone of LUMI's tree (scripts/link_images.sh in
 * LUMI-EasyBuild-containers) holds, in easybuild-sif-images/, absolute
 * links to the production images of the same name: they are not bad names.
 * Their content is production's, so no checksum here; a link that dangles
 * or points at an image of another name is still a problem.
 */
async function cloneLink(abs: string, name: string): Promise<Omit<Problem, 'path'> | undefined> {
  const target = await fs.readlink(abs);
  if (!path.isAbsolute(target) || path.basename(target) !== name) {
    return {
      kind: 'link-name',
      message: `a development-clone link points at the image of its own name by absolute path; this one points at ${target}`,
      repairable: false,
    };
  }
  if (
    !(await fs.stat(abs).then(
      (t) => t.isFile(),
      () => false,
    ))
  )
    return { kind: 'dangling-link', message: `points at ${target}, which is not an image file`, repairable: false };
  return undefined;
}

/**
 * Every directory a command places files in by temp name: the image
 * directories and all of `.sifkit/` (ledger, quarantine, signatures, host
 * snapshots, test results, and whatever comes next), found by walking it
 * rather than listed, so a new writer's leftovers are named without a
 * change here. The lock's own directories are the lock's to judge.
 */
async function writtenDirs(tree: Tree): Promise<string[]> {
  const out = [tree.tested, tree.easybuild, tree.sifImages];
  const lockDirs = new Set([tree.lock, `${tree.lock}.break`]);
  const walk = async (dir: string): Promise<void> => {
    out.push(dir);
    const list = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of list) {
      const p = path.join(dir, e.name);
      // A temp directory is a leftover itself, not a place to look in; a link is never followed out.
      if (e.isDirectory() && !e.name.includes(TEMP_MARKER) && !lockDirs.has(p)) await walk(p);
    }
  };
  await walk(tree.state);
  return out;
}

/** Checks the tree; with `repair`, the caller holds the lock. */
export async function verifyTree(tree: Tree, opts: VerifyOptions = {}): Promise<Problem[]> {
  const problems: Problem[] = [];
  const add = (p: Problem) => problems.push(p);
  const scan = await scanLedger(tree);
  const ledger = new Map<string, LedgerEntry>(scan.entries.map((e) => [e.name, e]));
  // Not repaired: the record's image may be fine; restaging it writes the record again.
  for (const d of scan.damaged)
    add({ kind: 'ledger-damaged', path: path.relative(tree.root, d.file), message: d.message, repairable: false });
  const touched = new Set<LedgerEntry>();
  // A file nothing needs (a leftover, an orphan record): named, and removed by --repair.
  const removable = async (kind: Problem['kind'], p: string, message: string) => {
    const problem: Problem = { kind, path: path.relative(tree.root, p), message, repairable: true };
    if (opts.repair) {
      await fs.rm(p, { recursive: true, force: true });
      problem.repaired = 'removed';
    }
    add(problem);
  };

  // Leftovers of interrupted operations, everywhere we write. While a live
  // command holds the lock its temp files are work in progress, not leftovers.
  const holder = opts.repair ? undefined : await lockHolder(tree.lock);
  if (holder && !holder.live)
    add({
      kind: 'stale-lock',
      path: path.relative(tree.root, tree.lock),
      message: `held by ${describeLock(holder)}; the next mutating command (or verify --repair) breaks it`,
      repairable: true,
    });
  // The short lock taken to remove the main one, left by a process killed right then.
  const brk = await lockHolder(`${tree.lock}.break`);
  if (brk && !brk.live && !holder?.live) {
    const problem: Problem = {
      kind: 'stale-lock',
      path: path.relative(tree.root, `${tree.lock}.break`),
      message: `held by ${describeLock(brk)}; the next removal of the lock (or verify --repair) breaks it`,
      repairable: true,
    };
    if (opts.repair) {
      await clearDeadBreakLock(tree.lock);
      problem.repaired = 'broken';
    }
    add(problem);
  }
  for (const dir of holder?.live ? [] : await writtenDirs(tree)) {
    for (const name of await entries(dir)) {
      if (!name.includes(TEMP_MARKER) || liveTemp(name)) continue;
      await removable('temp-leftover', path.join(dir, name), 'left by an interrupted operation');
    }
  }

  // A retired record whose image is not beside it (retire stopped before its move, restore or purge after).
  for (const dir of holder?.live ? [] : [TESTED, EASYBUILD]) {
    for (const name of await entries(path.join(tree.quarantine, dir))) {
      if (!name.endsWith('.sif.retired.json') || name.includes(TEMP_MARKER)) continue;
      const p = path.join(tree.quarantine, dir, name);
      if (await pathExists(p.slice(0, -'.retired.json'.length), false)) continue;
      await removable('retired-orphan', p, 'the record of a retired image that is not in the quarantine');
    }
  }

  for (const dir of [TESTED, EASYBUILD]) {
    for (const name of await entries(path.join(tree.root, dir))) {
      if (name.includes(TEMP_MARKER)) continue;
      const rel = `${dir}/${name}`;
      const abs = path.join(tree.root, rel);
      const st = await fs.lstat(abs);
      const parsed = parseSifFileName(name);
      if (parsed && st.isSymbolicLink() && dir === EASYBUILD) {
        const clone = await cloneLink(abs, name);
        if (clone) add({ ...clone, path: rel });
        continue;
      }
      if (!parsed || st.isSymbolicLink() || !st.isFile()) {
        add({
          kind: 'bad-name',
          path: rel,
          message: st.isFile() ? 'name does not follow <stem>-dockerhash-<12 hex>.sif|.tar' : 'not a regular file',
          repairable: false,
        });
        continue;
      }
      if ((st.mode & 0o444) !== 0o444) {
        const problem: Problem = {
          kind: 'unreadable',
          path: rel,
          message: `mode ${(st.mode & 0o777).toString(8)}: not readable by everyone`,
          repairable: true,
        };
        if (opts.repair) {
          await fs.chmod(abs, (st.mode & 0o777) | 0o444);
          problem.repaired = 'made readable (a+r)';
          const e = ledger.get(name);
          // chmod moves ctime; the content did not change.
          if (e?.hashed[rel]) {
            e.hashed[rel] = statKey(await fs.stat(abs));
            touched.add(e);
          }
        }
        add(problem);
      }
      if (parsed.ext !== 'sif') continue;
      const e = ledger.get(name);
      const recorded = e?.hashed[rel];
      const state = await checkFile(tree, e, rel, opts.deep, opts.signal);
      if (state === 'ok') touched.add(e as LedgerEntry);
      // Same content, but the stat the ledger vouches by is not this file's (a command stopped between moving
      // or linking the image and recording it): status calls it changed until the stat is recorded again.
      if (state === 'ok' && !sameStat(recorded, statKey(await fs.stat(abs)))) {
        const problem: Problem = {
          kind: 'checksum-stale',
          path: rel,
          message:
            'content matches the recorded sha256, but the ledger has not recorded the file as it is now (status says changed)',
          repairable: true,
        };
        if (opts.repair) problem.repaired = 'recorded again';
        add(problem);
      }
      if (state === 'mismatch')
        add({
          kind: 'checksum-mismatch',
          path: rel,
          message: `content differs from the recorded sha256 ${e?.sha256.slice(0, 16)}…`,
          repairable: false,
        });
      if (state === 'unrecorded')
        add({
          kind: 'checksum-unrecorded',
          path: rel,
          message: 'no checksum recorded (not staged by sifkit)',
          repairable: false,
        });
    }
  }

  for (const name of await entries(tree.sifImages)) {
    if (name.includes(TEMP_MARKER)) continue;
    const rel = `${SIF_IMAGES}/${name}`;
    const abs = path.join(tree.sifImages, name);
    const st = await fs.lstat(abs);
    if (!st.isSymbolicLink()) {
      add({ kind: 'not-a-link', path: rel, message: `${SIF_IMAGES}/ holds links only`, repairable: false });
      continue;
    }
    const { target, image } = (await readLinkIn(tree, name))!; // a link: lstat said so
    const resolved = path.resolve(tree.sifImages, target);
    if (!inside(tree.root, resolved) || inside(path.join(tree.root, STATE), resolved)) {
      add({ kind: 'escaping-link', path: rel, message: `points outside the tree: ${target}`, repairable: false });
      continue;
    }
    if (!(await pathExists(abs))) {
      add({
        kind: 'dangling-link',
        path: rel,
        message: `points at ${target}, which does not exist`,
        repairable: false,
      });
      continue;
    }
    const parsed = parseSifFileName(image);
    if (!parsed || linkName(parsed.stem) !== name)
      add({
        kind: 'link-name',
        path: rel,
        message: `a link is named <stem>.sif after its image; this one points at ${image}`,
        repairable: false,
      });
  }

  // Ledger records whose file never appeared (stage interrupted before its rename).
  // (A live holder may be between its ledger write and its rename: not judged then.)
  for (const e of holder?.live ? [] : ledger.values()) {
    const exists =
      (await pathExists(path.join(tree.tested, e.name))) ||
      (await pathExists(path.join(tree.easybuild, e.name))) ||
      (await pathExists(path.join(tree.quarantine, TESTED, e.name), false)) ||
      (await pathExists(path.join(tree.quarantine, EASYBUILD, e.name), false));
    if (exists) {
      // A path the record still vouches for that holds no file (a retire stopped between its move and its record).
      for (const rel of Object.keys(e.hashed)) {
        if (await pathExists(path.join(tree.root, rel), false)) continue;
        const problem: Problem = {
          kind: 'checksum-stale',
          path: rel,
          message: `the ledger still records ${e.name} here, where there is no file`,
          repairable: true,
        };
        if (opts.repair) {
          delete e.hashed[rel];
          touched.add(e);
          problem.repaired = 'record dropped';
        }
        add(problem);
      }
      continue;
    }
    const problem: Problem = {
      kind: 'ledger-orphan',
      path: path.relative(tree.root, ledgerPath(tree, e.name)),
      message: `checksum record for ${e.name}, which is in no directory`,
      repairable: true,
    };
    if (opts.repair) {
      await fs.rm(ledgerPath(tree, e.name), { force: true });
      problem.repaired = 'record removed';
      touched.delete(e);
    }
    add(problem);
  }
  if (opts.repair) for (const e of touched) await writeLedger(tree, e);
  if (opts.deep) problems.push(...(await signatureProblems(tree, ledger, opts.signal)));
  return problems;
}

/** With a trust policy: every staged image's build signature, and its tested signature where the policy names tested keys. */
async function signatureProblems(
  tree: Tree,
  ledger: Map<string, LedgerEntry>,
  signal?: AbortSignal,
): Promise<Problem[]> {
  const trust = await loadTrustPolicy(tree);
  if (!trust) return [];
  const out: Problem[] = [];
  for (const name of await entries(tree.tested)) {
    if (name.includes(TEMP_MARKER) || !parseSifFileName(name)) continue;
    const rel = `${TESTED}/${name}`;
    try {
      await requireBuildSignature(trust, path.join(tree.tested, name), rel, signal);
    } catch (e) {
      if (!isSifkitError(e) || e.exitCode !== ExitCode.refused) throw e;
      out.push({ kind: 'signature', path: rel, message: e.message, repairable: false });
      continue;
    }
    const entry = ledger.get(name);
    // Promoted images carry the tested signature (and one that is there must hold); staged-only ones need none yet.
    const promoted = await pathExists(path.join(tree.easybuild, name));
    const signed = await pathExists(testedSignaturePath(tree, name));
    if (trust.tested && entry && (promoted || signed)) {
      const problem = await checkTested(tree, trust.tested.keys, name, entry.sha256, entry.tests ?? []);
      if (problem) out.push({ kind: 'signature', path: rel, message: problem, repairable: false });
    }
  }
  return out;
}
