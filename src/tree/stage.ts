/**
 * `stage`: a converted (and tested) SIF into tested-containers/ under its
 * dockerhash name, read from the SIF's own labels; with its checksum
 * recorded before the file appears under its final name.
 */
import { commandLine } from '../emit/bash';
import type { RunGate, TestRun } from '../validate/schemas/results';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, RefusedError, errnoCode } from '../errors';
import { sifFileName } from '../recipe/names';
import { inspectSif, type SifSummary } from '../sif/inspect';
import { imageLabels, type ImageLabels } from '../validate/labels';
import { inside, targetInside } from '../validate/paths';
import { latestRun, mergeRuns, runVerdict, testRuns } from '../validate/schemas/results';
import { ledgerPath, readLedger, statKey, writeLedger, type LedgerEntry } from './ledger';
import { ensureSpace, placeTemp, renameIntoPlace, sameDevice } from './atomic';
import { pathExists } from '../util/files';
import { TESTED, ensureLayout, type Tree } from './root';
import { mutate } from './mutate';
import { loadTrustPolicy, requireBuildSignature } from './trust';

export interface StageOptions {
  archive?: string;
  signal?: AbortSignal;
  /** Test runs to record with the image (the test stage passes them). */
  tests?: TestRun[];
  /**
   * Or how to find them once the image's name is known (the CLI reads a
   * results file): asked after the signature check, so nothing an unsigned
   * SIF's labels say is acted on.
   */
  testsFor?: (name: string) => Promise<TestRun[]>;
  /**
   * Refuse unless a passing test run is recorded (issue 8); absent when
   * --untested. A gate's refusal is worded by the gate's own summary
   * (checks/gate.ts runGateSummary), passed in: the tree does not import checks.
   */
  requireTests?: { gateSummary: (gate: RunGate) => string };
  /**
   * `file` and `archive` are given up once staged (release's --out copies,
   * named in `removeAfter`): on the tree's file system they enter it by hard
   * link, not by a copy. Never for a file the user keeps: writing to it
   * would change the tree's.
   */
  link?: boolean;
  /**
   * The files given up (never a path in the tree): removed here, under the
   * lock, before the tree's file is recorded, since unlinking a hard link's
   * other name moves the inode's ctime, which the ledger's stat records.
   */
  removeAfter?: string[];
}

export interface StageRecord {
  name: string;
  path: string;
  sha256: string;
  size: number;
  already: boolean;
  archive?: string;
  /** The SIF entered the tree by hard link (no copy). */
  linked: boolean;
}

/** What the tree needs from a SIF's labels, checked; refuses SIFs that lack them. */
export function sifIdentity(s: SifSummary): ImageLabels & { name: string } {
  const l = imageLabels(s.labels, s.file);
  return { ...l, name: sifFileName(l.stem, l.dockerhash) };
}

/** Staging needs the image's latest run to have passed: an older pass does not outweigh a later failure or refusal. */
function requirePassingRun(
  name: string,
  tests: readonly unknown[] | undefined,
  gateSummary: (gate: RunGate) => string,
  /** The commands the hints name, with this image's real arguments. */
  commands: { test: string; untested: string },
): void {
  const latest = latestRun(testRuns(tests));
  if (!latest)
    throw new RefusedError('untested', `${name} has no passing test run`, {
      hint: `test it first: ${commands.test}; or stage it untested: ${commands.untested}`,
    });
  const verdict = runVerdict(latest);
  if (verdict === 'refused') {
    throw new RefusedError(
      'gate-refused',
      `the latest test run of ${name} (${latest.finished.slice(0, 16).replace('T', ' ')}) was refused by the regression gate: ${gateSummary(latest.gate!)}`,
      {
        hint: `test it again: ${commands.test} (add --tolerance FRACTION or --no-gate to move past the gate); or stage it untested: ${commands.untested}`,
      },
    );
  }
  if (verdict === 'failed')
    throw new RefusedError(
      'untested',
      `the latest test run of ${name} (${latest.finished.slice(0, 16).replace('T', ' ')}) failed`,
      { hint: `test it again: ${commands.test}; or stage it untested: ${commands.untested}` },
    );
}

export async function stage(tree: Tree, file: string, opts: StageOptions = {}): Promise<StageRecord> {
  // A tree with a trust policy takes only a SIF a build key signed, checked before anything is written
  // and before its objects are read: what an unsigned object says (labels, SBOM) is no one's word.
  const trust = await loadTrustPolicy(tree);
  if (trust) await requireBuildSignature(trust, path.resolve(file), path.basename(file), opts.signal);
  const summary = await inspectSif(path.resolve(file));
  if (!summary.partition?.squashfsMagic)
    throw new InputError('bad-sif', `${file}: its primary partition is not squashfs`);
  const facts = sifIdentity(summary);
  const tests = opts.tests ?? (await opts.testsFor?.(facts.name));
  if (opts.requireTests)
    requirePassingRun(facts.name, tests, opts.requireTests.gateSummary, {
      test: commandLine(['sifkit', 'test', path.resolve(file), '--root', tree.root]),
      untested: commandLine(['sifkit', 'stage', path.resolve(file), '--untested', '--root', tree.root]),
    });
  if (opts.archive)
    await fs.access(opts.archive).catch(() => {
      throw new InputError('no-archive', `no archive at ${opts.archive}`);
    });
  return mutate(tree, 'stage', opts.signal, async (changes) => {
    // An empty directory becomes a tree only now, once the image passed every check above.
    await ensureLayout(tree);
    const target = await targetInside(tree.tested, facts.name);
    const rel = `${TESTED}/${facts.name}`;
    const existing = await readLedger(tree, facts.name);
    // Room for the copies is checked before the first byte is written (a hard link needs none).
    const sources = [path.resolve(file), ...(opts.archive ? [path.resolve(opts.archive)] : [])];
    await ensureSpace(tree.tested, await bytesToCopy(sources, tree.tested, opts.link ?? false), tree.root);
    const place = { link: opts.link ?? false, signal: opts.signal };
    const copied = await placeTemp(path.resolve(file), target, place);
    try {
      let already = false;
      try {
        await fs.lstat(target);
        already = true;
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
      }
      if (already && existing && existing.sha256 !== copied.sha256)
        throw new RefusedError(
          'name-clash',
          `${rel} exists with different content (sha256 ${existing.sha256.slice(0, 12)}…, new ${copied.sha256.slice(0, 12)}…); a dockerhash name must name one image`,
        );
      const entry: LedgerEntry = {
        name: facts.name,
        sha256: copied.sha256,
        size: copied.size,
        stem: facts.stem,
        dockerhash: facts.dockerhash,
        imageCreated: facts.created,
        recipe: facts.recipe,
        params: facts.params,
        labels: Object.fromEntries(
          Object.entries(facts.all).filter(([k]) => k.startsWith('io.sifkit.') || k.startsWith('org.opencontainers.')),
        ),
        stagedAt: existing?.stagedAt ?? new Date().toISOString(),
        stagedBy: existing?.stagedBy ?? os.userInfo().username,
        hashed: { ...(existing?.hashed ?? {}) },
        archive: existing?.archive,
        // Runs already on record (a restage) are kept once.
        tests: mergeRuns(existing?.tests, tests),
      };
      let archiveName: string | undefined;
      if (opts.archive) {
        archiveName = sifFileName(facts.stem, facts.dockerhash, 'tar');
        const archiveAt = await targetInside(tree.tested, archiveName);
        const hadArchive = await pathExists(archiveAt, false);
        const a = await placeTemp(path.resolve(opts.archive), archiveAt, place);
        await renameIntoPlace(a.tmp, archiveAt);
        // A replaced archive has no old copy to go back to.
        changes.made(hadArchive ? undefined : () => fs.rm(archiveAt, { force: true }));
        entry.archive = { name: archiveName, sha256: a.sha256, size: a.size };
      }
      // The checksum is on record before the file shows under its final name.
      await writeLedger(tree, entry);
      changes.made(() =>
        existing ? writeLedger(tree, existing) : fs.rm(ledgerPath(tree, facts.name), { force: true }),
      );
      // Same content already there: keep that inode (it may be hard-linked from easybuild-sif-images).
      if (already && existing?.sha256 === copied.sha256) await fs.rm(copied.tmp, { force: true });
      else {
        await renameIntoPlace(copied.tmp, target);
        changes.made(already ? undefined : () => fs.rm(target, { force: true }));
      }
      entry.hashed[rel] = statKey(await fs.stat(target));
      await writeLedger(tree, entry);
      const given = (opts.removeAfter ?? []).map((f) => path.resolve(f)).filter((f) => !inside(tree.root, f));
      if (given.length) {
        for (const f of given) await fs.rm(f, { force: true });
        try {
          entry.hashed[rel] = statKey(await fs.stat(target));
          await writeLedger(tree, entry);
        } catch {
          // What is staged stays staged: a stat not recorded again is one verify names and --repair records.
        }
      }
      return {
        value: {
          name: facts.name,
          path: target,
          sha256: copied.sha256,
          size: copied.size,
          already,
          archive: archiveName,
          linked: copied.linked,
        },
        files: [
          { path: rel, sha256: copied.sha256, op: already ? 'restaged' : 'staged' },
          ...(entry.archive
            ? [{ path: `${TESTED}/${entry.archive.name}`, sha256: entry.archive.sha256, op: 'staged' }]
            : []),
        ],
      };
    } catch (e) {
      await fs.rm(copied.tmp, { force: true });
      throw e;
    }
  });
}

/** What staging `sources` into `dir` writes: all of them, but those a hard link can take in. */
async function bytesToCopy(sources: string[], dir: string, link: boolean): Promise<number> {
  let bytes = 0;
  for (const f of sources) if (!(link && (await sameDevice(f, dir)))) bytes += (await fs.stat(f)).size;
  return bytes;
}
