/**
 * `promote`: a staged image to sif-images/ (the stem's link, switched
 * atomically, forward only unless --rollback) and/or to
 * easybuild-sif-images/ (the file: a hard link, or a copy across file
 * systems). The checksum is verified first; a mismatch changes nothing.
 */
import { commandLine } from '../emit/bash';
import { promises as fs } from 'node:fs';
import { mkdirShared } from '../util/files';
import * as path from 'node:path';
import { InputError, RefusedError } from '../errors';
import { parseSifFileName } from '../recipe/names';
import { checkFile } from './checksum';
import { compatGate } from './compat';
import { readLedger, statKey, writeLedger, type LedgerEntry } from './ledger';
import { ensureSpace, linkOrCopy, sameDevice, symlinkAtomic } from './atomic';
import { EASYBUILD, SIF_IMAGES, TESTED, inside, type Tree } from './root';
import { imageArgName } from '../validate/names';
import { mutate } from './mutate';
import { linkName, stemLink } from './links';
import { checkTested, loadTrustPolicy, requireBuildSignature, writeTested } from './trust';
import type { SigningKey } from '../sif/keys';

export const PROMOTE_TARGETS = ['sif-images', 'easybuild-sif-images', 'all'] as const;
export type PromoteTarget = (typeof PROMOTE_TARGETS)[number];

export function parseTarget(s: string): PromoteTarget {
  if ((PROMOTE_TARGETS as readonly string[]).includes(s)) return s as PromoteTarget;
  throw new InputError('bad-target', `--to ${JSON.stringify(s)} is not sif-images, easybuild-sif-images or all`);
}

export interface PromoteOptions {
  to: PromoteTarget;
  /** false: skip the check against the tree's recorded host snapshots (--no-compat). */
  compat?: boolean;
  rollback?: boolean;
  signal?: AbortSignal;
  /** Signs the tested signature when the tree's trust policy asks for one (a `tested` key of the policy). */
  testedKey?: SigningKey;
}

/**
 * The trust policy's checks, before the lock is taken and anything (even
 * the audit log) changes: the build signature, and whether the tested
 * signature holds or can be made. True when promote must write it.
 */
async function trustChecks(tree: Tree, name: string, opts: PromoteOptions): Promise<boolean> {
  const trust = await loadTrustPolicy(tree);
  if (!trust) return false;
  const rel = `${TESTED}/${name}`;
  await requireBuildSignature(trust, path.join(tree.tested, name), rel, opts.signal);
  if (!trust.tested) return false;
  if (opts.testedKey && !trust.tested.names.some((n) => n.startsWith(opts.testedKey!.fingerprint)))
    throw new RefusedError(
      'untrusted-key',
      `the key ${opts.testedKey.fingerprint} is not a tested key of the trust policy ${trust.file}`,
    );
  const entry = await readLedger(tree, name);
  const problem = entry ? await checkTested(tree, trust.tested.keys, name, entry.sha256, entry.tests ?? []) : undefined;
  if (problem && !opts.testedKey)
    throw new RefusedError('not-tested-signed', `${rel}: ${problem}; the tree's trust policy requires one`, {
      hint: 'promote with --tested-key KEY (a tested key of the policy), or set SIFKIT_TESTED_KEY',
    });
  return problem !== undefined;
}

export interface PromoteRecord {
  name: string;
  link?: { path: string; target: string; previous?: string; changed: boolean };
  easybuild?: { path: string; how: 'hardlink' | 'copy' | 'present' };
  /** The tested signature this promotion wrote (trust policy). */
  testedSignature?: string;
}

/** `foo.sif`, `foo` or a path to a staged file → the staged name. */
export function stagedName(arg: string): string {
  const forms = [`a path to it in ${TESTED}/`];
  if (arg.includes('/')) {
    const dir = path.basename(path.dirname(path.resolve(arg)));
    if (dir !== TESTED) throw new InputError('bad-name', `${arg} is not in ${TESTED}/; give the image's name`);
    return imageArgName(path.basename(arg), 'image NAME', forms);
  }
  return imageArgName(arg, 'image NAME', forms);
}

/** Which of two images is newer: image creation time, then staging time. */
export function newer(a: LedgerEntry, b: LedgerEntry): boolean {
  const ka = a.imageCreated ?? a.stagedAt;
  const kb = b.imageCreated ?? b.stagedAt;
  return ka > kb;
}

export async function promote(tree: Tree, nameArg: string, opts: PromoteOptions): Promise<PromoteRecord> {
  const name = stagedName(nameArg);
  if (!parseSifFileName(name))
    throw new InputError('bad-name', `${name} does not follow <stem>-dockerhash-<12 hex>.sif`);
  // Read-only, so before the lock: an image that breaks on a host the tree serves goes no further.
  if (opts.compat !== false) await compatGate(tree, name, { signal: opts.signal });
  // Unknown names are bad input, found without taking the lock or making anything.
  if (
    !(await fs.stat(path.join(tree.tested, name)).then(
      (s) => s.isFile(),
      () => false,
    ))
  )
    throw new InputError('unknown-image', `no staged image ${name} in ${TESTED}/`, {
      hint: `${commandLine(['sifkit', 'status', '--root', tree.root])} lists what is there`,
    });
  const signTested = await trustChecks(tree, name, opts);
  return mutate(tree, 'promote', opts.signal, async (changes) => {
    const entry = await readLedger(tree, name);
    const rel = `${TESTED}/${name}`;
    const state = await checkFile(tree, entry, rel, false, opts.signal);
    if (state === 'missing')
      throw new InputError('unknown-image', `no staged image ${name} in ${TESTED}/`, {
        hint: `${commandLine(['sifkit', 'status', '--root', tree.root])} lists what is there`,
      });
    if (state === 'unrecorded')
      throw new RefusedError(
        'no-checksum',
        `${rel} has no recorded checksum; not promoting an image nobody vouched for`,
        // A file put there by hand: staging it (from where it is) records its checksum.
        { hint: `stage it: ${commandLine(['sifkit', 'stage', path.join(tree.tested, name), '--root', tree.root])}` },
      );
    if (state === 'mismatch')
      throw new RefusedError(
        'checksum-mismatch',
        `${rel} does not match its recorded sha256 ${entry!.sha256.slice(0, 16)}…; refusing to promote a changed file`,
      );
    const e = entry as LedgerEntry;
    const record: PromoteRecord = { name };
    const files: Array<{ path: string; sha256?: string; op?: string }> = [];
    const wantLink = opts.to === 'sif-images' || opts.to === 'all';
    const wantFile = opts.to === 'easybuild-sif-images' || opts.to === 'all';
    const erel = `${EASYBUILD}/${name}`;
    // Every refusal comes before the first change.
    const at = path.join(tree.sifImages, linkName(e.stem));
    const previous = wantLink ? (await stemLink(tree, e.stem))?.target : undefined;
    if (previous && !inside(tree.root, path.resolve(tree.sifImages, previous)))
      throw new RefusedError(
        'escaping-link',
        `${SIF_IMAGES}/${linkName(e.stem)} points outside the tree (${previous}); not touching it`,
        { hint: 'someone made it by hand: check it, remove it, then promote again' },
      );
    if (wantLink && previous && path.basename(previous) !== name && !opts.rollback) {
      const prevName = path.basename(previous);
      const prev = await readLedger(tree, prevName);
      if (prev && newer(prev, e))
        throw new RefusedError(
          'not-forward',
          `${SIF_IMAGES}/${linkName(e.stem)} points at ${prevName}, which is newer than ${name}`,
          { hint: 'use --rollback to move it back on purpose' },
        );
    }
    let ebState = await checkFile(tree, e, erel, false, opts.signal);
    if (wantFile && ebState === 'mismatch')
      throw new RefusedError(
        'checksum-mismatch',
        `${erel} exists with other content; not overwriting a file EasyConfigs may name`,
      );
    const ebPresent = ebState === 'ok' || ebState === 'ok-cached';
    if (wantFile && !ebPresent) {
      await mkdirShared(tree.easybuild);
      // Across file systems it is a copy: room for it is checked before it starts.
      if (!(await sameDevice(tree.tested, tree.easybuild))) await ensureSpace(tree.easybuild, e.size, tree.root);
    }
    if (wantLink) await mkdirShared(tree.sifImages);
    if (wantFile) {
      const target = path.join(tree.easybuild, name);
      if (ebPresent) record.easybuild = { path: target, how: 'present' };
      else {
        record.easybuild = { path: target, how: await linkOrCopy(path.join(tree.tested, name), target, opts.signal) };
        changes.made(() => fs.rm(target, { force: true }));
        files.push({ path: erel, sha256: e.sha256, op: record.easybuild.how });
        ebState = 'ok';
      }
      // A new hard link changes the inode's ctime: record the stat again (content verified above).
      for (const r of [rel, erel]) e.hashed[r] = statKey(await fs.stat(path.join(tree.root, r)));
    }
    if (wantLink) {
      // Point at the longer-kept copy when there is one.
      const dir = ebState === 'ok' || ebState === 'ok-cached' ? EASYBUILD : TESTED;
      const linkTarget = `../${dir}/${name}`;
      const changed = previous !== linkTarget;
      if (changed) {
        await symlinkAtomic(linkTarget, at);
        changes.made(() => (previous ? symlinkAtomic(previous, at) : fs.rm(at, { force: true })));
      }
      record.link = { path: at, target: linkTarget, previous, changed };
      if (changed)
        files.push({
          path: `${SIF_IMAGES}/${linkName(e.stem)}`,
          op: `link -> ${linkTarget}${previous ? ` (was ${previous})` : ''}`,
        });
    }
    if (signTested && opts.testedKey) {
      const sig = await writeTested(tree, opts.testedKey, name, e.sha256, e.tests ?? []);
      record.testedSignature = sig;
      files.push({ path: path.relative(tree.root, sig), op: `tested signature by ${opts.testedKey.fingerprint}` });
    }
    await writeLedger(tree, e);
    return { value: record, files, detail: { to: opts.to, rollback: Boolean(opts.rollback) } };
  });
}
