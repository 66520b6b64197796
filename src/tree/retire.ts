/**
 * `retire`: which images go, by the retention policy, without ever
 * breaking what still points at them. The plan is pure (what is in the
 * tree, what references it, the policy, now → decisions); carrying it out
 * renames files into a quarantine (O(1), reversible), and `--purge`
 * deletes them for good only after the grace period and a successful
 * backup. Every step is one rename, so an interrupted run is finished by
 * running it again.
 */
import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RefusedError, throwIfAborted } from '../errors';
import { fsyncPath, writeFileAtomic } from '../util/files';
import { listLedger, statKey, writeLedger } from './ledger';
import { mutate } from './mutate';
import type { Policy } from './policy';
import { symlinkAtomic } from './atomic';
import { checkFile } from './checksum';
import { SIF_IMAGES, type Tree } from './root';
import { planRetire, type Plan } from './retire-plan';
import { gatherImages, gatherLinks, scanEasyconfigs } from './retire-gather';
import { quarantinePaths, sameStatSync } from './quarantine';

export * from './retire-plan';
export * from './retire-gather';
export * from './quarantine';

export interface RetireOptions {
  policy: Policy;
  easyconfigs?: string;
  includeReferenced?: boolean;
  apply?: boolean;
  now?: number;
  signal?: AbortSignal;
}

export interface RetireResult {
  plan: Plan;
  applied: boolean;
}

export async function computePlan(tree: Tree, opts: RetireOptions): Promise<Plan> {
  const ledger = new Map((await listLedger(tree)).map((e) => [e.name, e]));
  const checkout = opts.easyconfigs ?? opts.policy.easyconfigs;
  return planRetire({
    images: await gatherImages(tree, ledger),
    links: await gatherLinks(tree),
    easyconfigs: checkout ? await scanEasyconfigs(path.resolve(checkout)) : new Map(),
    policy: opts.policy,
    now: opts.now ?? Date.now(),
    includeReferenced: Boolean(opts.includeReferenced),
  });
}

export function blockedError(plan: Plan): RefusedError {
  const b = plan.decisions.filter((d) => d.action === 'blocked');
  return new RefusedError(
    'referenced',
    `${b.length} broken image(s) are still referenced: ${b.map((d) => `${d.dir}/${d.name} by ${d.references.join(', ')}`).join('; ')}`,
    { hint: 'rerun with --include-referenced to archive those EasyConfigs and move the links too' },
  );
}

export async function retire(tree: Tree, opts: RetireOptions): Promise<RetireResult> {
  const first = await computePlan(tree, opts);
  if (!opts.apply) return { plan: first, applied: false };
  // Nothing to do: no lock taken, no directory made, no audit line.
  if (
    !first.archive.length &&
    !first.links.length &&
    !first.decisions.some((d) => d.action === 'retire' || d.action === 'blocked')
  )
    return { plan: first, applied: true };
  return mutate(
    tree,
    'retire',
    opts.signal,
    async (changes) => {
      // Planned again under the lock: the tree may have changed since anyone looked.
      const plan = await computePlan(tree, opts);
      if (plan.decisions.some((d) => d.action === 'blocked')) throw blockedError(plan);
      const files: Array<{ path: string; op: string }> = [];
      const checkout = opts.easyconfigs ?? opts.policy.easyconfigs;
      for (const a of plan.archive) {
        throwIfAborted(opts.signal);
        const from = path.join(path.resolve(checkout as string), a.from);
        const to = path.join(path.resolve(checkout as string), a.to);
        await fs.mkdir(path.dirname(to), { recursive: true });
        await fs.rename(from, to);
        changes.made();
        files.push({ path: a.from, op: `archived to ${a.to}` });
      }
      for (const l of plan.links) {
        throwIfAborted(opts.signal);
        const at = path.join(tree.sifImages, l.link);
        if (l.to) await symlinkAtomic(l.to, at);
        else {
          await fs.rm(at, { force: true });
          await fsyncPath(tree.sifImages);
        }
        changes.made();
        files.push({
          path: `${SIF_IMAGES}/${l.link}`,
          op: l.to ? `link -> ${l.to} (was ${l.from})` : `link removed (was ${l.from})`,
        });
      }
      const ledger = new Map((await listLedger(tree)).map((e) => [e.name, e]));
      for (const d of plan.decisions.filter((x) => x.action === 'retire')) {
        throwIfAborted(opts.signal);
        const q = quarantinePaths(tree, d.dir, d.name);
        // A rename moves the inode's ctime: the other name of a hard-linked
        // image would look changed. Note which names the ledger vouched for.
        const entry = ledger.get(d.name);
        const vouched = entry
          ? Object.keys(entry.hashed).filter(
              (rel) => rel !== `${d.dir}/${d.name}` && sameStatSync(tree, rel, entry.hashed[rel]),
            )
          : [];
        await fs.mkdir(path.dirname(q.file), { recursive: true });
        const rel = `${d.dir}/${d.name}`;
        // The stat the content was vouched for, as the quarantine will hold it (a rename keeps size, inode and
        // mtime): restore carries it back. In the record from the start, so no stop can leave a record without it.
        // A name the ledger vouched for whose stat a stopped run moved (it renamed the image's other name, then
        // died before recording) is read again: what counts is that the content is still the one vouched for.
        const vouchedHere =
          entry?.hashed[rel] !== undefined &&
          ['ok', 'ok-cached'].includes(await checkFile(tree, entry, rel, false, opts.signal));
        const stat = vouchedHere ? statKey(fsSync.statSync(path.join(tree.root, rel))) : undefined;
        // The record first, then the one rename: a crash leaves the file in one place or the other.
        await writeFileAtomic(
          q.manifest,
          JSON.stringify(
            {
              name: d.name,
              dir: d.dir,
              retiredAt: new Date().toISOString(),
              rule: d.rule,
              by: os.userInfo().username,
              ...(stat ? { stat } : {}),
            },
            null,
            2,
          ) + '\n',
        );
        // A link (in a development clone) moves as a link: the file it points at is never touched.
        await fs.rename(path.join(tree.root, rel), q.file);
        changes.made();
        await fsyncPath(path.join(tree.root, d.dir));
        if (entry) {
          delete entry.hashed[rel];
          for (const r of vouched) entry.hashed[r] = statKey(fsSync.statSync(path.join(tree.root, r)));
          await writeLedger(tree, entry);
        }
        files.push({ path: `${d.dir}/${d.name}`, op: `quarantined (${d.rule})` });
      }
      return { value: { plan, applied: true }, files, detail: { retired: files.length } };
    },
    { resume: 'every step is one rename: run the same command again to finish it' },
  );
}
