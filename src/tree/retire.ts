/**
 * `retire`: which images go, by the retention policy, without ever
 * breaking what still points at them. The plan is pure (what is in the
 * tree, what references it, the policy, now → decisions); carrying it out
 * renames files into a quarantine (O(1), reversible), and `--purge`
 * deletes them for good only after the grace period and a successful
 * backup. Every step is one rename, so an interrupted run is finished by
 * running it again.
 */
import { spawn } from 'node:child_process';
import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, RefusedError, errnoCode, throwIfAborted } from '../errors';
import { parseSifFileName } from '../recipe/names';
import { inspectSifSync } from '../sif/inspect';
import { writeFileAtomic } from '../util/files';
import { fsyncDir } from '../util/files';
import { listLedger, ledgerPath, sameStat, statKey, writeLedger, type LedgerEntry, type StatKey } from './ledger';
import { mutate } from './mutate';
import type { Grouping, Policy } from './policy';
import { symlinkAtomic } from './publish';
import { EASYBUILD, SIF_IMAGES, TESTED, type Tree } from './root';

export type ImageDir = typeof TESTED | typeof EASYBUILD;

export interface TreeImage {
  dir: ImageDir;
  name: string;
  stem: string;
  dockerhash: string;
  recipe?: string;
  params: Record<string, string>;
  /** Image creation time (ms); the file's mtime when unknown. */
  created: number;
  /** A link into another tree (a development clone). */
  isLink: boolean;
}

export interface TreeLink {
  name: string;
  target: string;
  targetDir?: string;
  targetName: string;
}

export interface Decision {
  dir: ImageDir;
  name: string;
  action: 'keep' | 'retire' | 'blocked';
  rule: string;
  /** What still names it: links, EasyConfigs, the pinned list. */
  references: string[];
  broken?: string;
}

export interface Plan {
  decisions: Decision[];
  /** EasyConfigs to move into __archive__ (relative to the checkout). */
  archive: Array<{ from: string; to: string; for: string }>;
  /** sif-images links to switch (to = undefined: remove). */
  links: Array<{ link: string; from: string; to?: string; for: string }>;
}

/** The series an image belongs to under a grouping; undefined when it has no such key. */
export function seriesKey(img: TreeImage, g: Grouping): string | undefined {
  const app = img.recipe ?? img.stem.split('-').slice(0, 2).join('-');
  switch (g) {
    case 'stem':
      return `stem:${img.stem}`;
    case 'app':
      return `app:${app}`;
    case 'rocm-minor': {
      const m = /^(\d+)\.(\d+)/.exec(img.params.rocm ?? '');
      return m ? `rocm:${app}:${m[1]}.${m[2]}` : undefined;
    }
  }
}

/** `easybuild/easyconfigs/__archive__/<letter>/<name>/<file>` for an active EasyConfig path. */
export function archiveTarget(rel: string): string {
  const parts = rel.split('/');
  const file = parts.pop() as string;
  const name = parts.pop() as string;
  const base = parts.slice(0, -1).join('/'); // drop the letter directory
  return `${base ? `${base}/` : ''}__archive__/${name[0].toLowerCase()}/${name}/${file}`;
}

export interface PlanInput {
  images: TreeImage[];
  links: TreeLink[];
  /** dockerhash → active EasyConfig paths naming it. */
  easyconfigs: Map<string, string[]>;
  policy: Policy;
  now: number;
  includeReferenced: boolean;
}

export function planRetire(input: PlanInput): Plan {
  const { policy, now } = input;
  const pinned = new Set(policy.pinned.map((p) => (p.endsWith('.sif') ? p : `${p}.sif`)));
  const broken = new Map(policy.broken.map((b) => [b.name.endsWith('.sif') ? b.name : `${b.name}.sif`, b.reason]));
  const decisions: Decision[] = [];
  const plan: Plan = { decisions, archive: [], links: [] };
  const linksTo = new Map<string, TreeLink[]>();
  for (const l of input.links) if (l.targetDir) linksTo.set(`${l.targetDir}/${l.targetName}`, [...(linksTo.get(`${l.targetDir}/${l.targetName}`) ?? []), l]);

  for (const dir of [TESTED, EASYBUILD] as ImageDir[]) {
    const rules = policy.directories[dir];
    const here = input.images.filter((i) => i.dir === dir);
    // Rank inside every series: newest first (broken images do not count as newer versions).
    const rank = new Map<string, Map<string, number>>();
    for (const g of rules.series) {
      const groups = new Map<string, TreeImage[]>();
      for (const img of here) {
        const k = seriesKey(img, g);
        if (k && !broken.has(img.name)) groups.set(k, [...(groups.get(k) ?? []), img]);
      }
      for (const [k, imgs] of groups) {
        imgs.sort((a, b) => b.created - a.created || (a.name < b.name ? 1 : -1));
        const m = new Map<string, number>();
        imgs.forEach((img, i) => m.set(img.name, i));
        rank.set(k, m);
      }
    }
    for (const img of here) {
      const references: string[] = [];
      for (const l of linksTo.get(`${dir}/${img.name}`) ?? []) references.push(`${SIF_IMAGES}/${l.name}`);
      if (dir === EASYBUILD) for (const eb of input.easyconfigs.get(img.dockerhash) ?? []) references.push(`EasyConfig ${eb}`);
      const d: Decision = { dir, name: img.name, action: 'keep', rule: '', references };
      const ageDays = (now - img.created) / 86_400_000;
      const brokenReason = broken.get(img.name);
      if (pinned.has(img.name)) d.rule = 'pinned';
      else if (brokenReason !== undefined) {
        d.broken = brokenReason;
        d.action = 'retire';
        d.rule = `broken: ${brokenReason}`;
      } else if (ageDays < rules.keepYoungerThanDays) d.rule = `younger than ${rules.keepYoungerThanDays} days (${ageDays.toFixed(0)} d)`;
      else {
        const kept = rules.series.map((g) => [g, seriesKey(img, g)] as const).find(([, k]) => k && (rank.get(k)?.get(img.name) ?? Infinity) < rules.keepNewest);
        if (kept) d.rule = `newest ${rules.keepNewest} of its ${kept[0]} series`;
        else {
          d.action = 'retire';
          const newer = Math.max(...rules.series.map((g) => rank.get(seriesKey(img, g) ?? '')?.get(img.name) ?? 0));
          d.rule = `old: ${newer} newer in its series, ${ageDays.toFixed(0)} days old`;
        }
      }
      if (d.action === 'retire' && references.length) {
        if (!d.broken) {
          // Still named by a link or an EasyConfig: it stays, whatever its age.
          d.action = 'keep';
          d.rule = `referenced (${d.rule})`;
        } else if (!input.includeReferenced) d.action = 'blocked';
        else {
          for (const eb of input.easyconfigs.get(img.dockerhash) ?? []) if (dir === EASYBUILD) plan.archive.push({ from: eb, to: archiveTarget(eb), for: img.name });
          for (const l of linksTo.get(`${dir}/${img.name}`) ?? []) {
            // The newest sound image of the same stem takes the link over, else the link goes.
            const repl = input.images
              .filter((o) => o.stem === img.stem && o.name !== img.name && !broken.has(o.name))
              .sort((a, b) => b.created - a.created || (a.dir === EASYBUILD ? -1 : 1))[0];
            plan.links.push({ link: l.name, from: l.target, to: repl ? `../${repl.dir}/${repl.name}` : undefined, for: img.name });
          }
        }
      }
      decisions.push(d);
    }
  }
  return plan;
}

/** Every active EasyConfig in a checkout (not under __archive__) and the dockerhashes it names. */
export function scanEasyconfigs(checkout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (rel: string) => {
    let entries: fsSync.Dirent[];
    try {
      entries = fsSync.readdirSync(path.join(checkout, rel), { withFileTypes: true });
    } catch (e) {
      if (rel === '') throw new InputError('no-easyconfigs', `cannot read the EasyConfig checkout ${checkout}: ${errnoCode(e) ?? e}`);
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name !== '__archive__' && e.name !== '.git') walk(r);
      } else if (e.name.endsWith('.eb')) {
        const text = fsSync.readFileSync(path.join(checkout, r), 'utf8');
        const hashes = new Set<string>();
        for (const m of text.matchAll(/dockerhash-([0-9a-f]{12})\b/g)) hashes.add(m[1]);
        for (const m of text.matchAll(/local_dockerhash\s*=\s*['"]([0-9a-f]{12})['"]/g)) hashes.add(m[1]);
        for (const h of hashes) out.set(h, [...(out.get(h) ?? []), r]);
      }
    }
  };
  walk('');
  return out;
}

/** What the tree holds, for the plan: ledger first, SIF labels for the rest. */
export function gatherImages(tree: Tree, ledger: Map<string, LedgerEntry>): TreeImage[] {
  const images: TreeImage[] = [];
  for (const dir of [TESTED, EASYBUILD] as ImageDir[]) {
    let names: string[] = [];
    try {
      names = fsSync.readdirSync(path.join(tree.root, dir));
    } catch {
      continue;
    }
    for (const name of names) {
      const parsed = parseSifFileName(name);
      if (!parsed || parsed.ext !== 'sif') continue;
      const abs = path.join(tree.root, dir, name);
      const lst = fsSync.lstatSync(abs);
      const e = ledger.get(name);
      let created = e?.imageCreated ? Date.parse(e.imageCreated) : NaN;
      let params = e?.params ?? {};
      let recipe = e?.recipe;
      if (!e) {
        try {
          const s = inspectSifSync(abs);
          created = Date.parse(s.labels['org.opencontainers.image.created'] ?? '');
          recipe = s.labels['io.sifkit.recipe'];
          params = Object.fromEntries(Object.entries(s.labels).filter(([k]) => k.startsWith('io.sifkit.param.')).map(([k, v]) => [k.slice(16), v]));
        } catch {
          /* unreadable: judged by its name and mtime */
        }
      }
      if (Number.isNaN(created)) created = (lst.isSymbolicLink() ? fsSync.statSync(abs) : lst).mtimeMs;
      images.push({ dir, name, stem: e?.stem ?? parsed.stem, dockerhash: e?.dockerhash ?? parsed.dockerhash, recipe, params, created, isLink: lst.isSymbolicLink() });
    }
  }
  return images;
}

export function gatherLinks(tree: Tree): TreeLink[] {
  const links: TreeLink[] = [];
  let names: string[] = [];
  try {
    names = fsSync.readdirSync(tree.sifImages);
  } catch {
    return links;
  }
  for (const name of names) {
    let target: string;
    try {
      target = fsSync.readlinkSync(path.join(tree.sifImages, name));
    } catch {
      continue;
    }
    const resolved = path.resolve(tree.sifImages, target);
    const dir = path.basename(path.dirname(resolved));
    const inTree = path.dirname(path.dirname(resolved)) === tree.root && (dir === TESTED || dir === EASYBUILD);
    links.push({ name, target, targetDir: inTree ? dir : undefined, targetName: path.basename(resolved) });
  }
  return links;
}

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
    images: gatherImages(tree, ledger),
    links: gatherLinks(tree),
    easyconfigs: checkout ? scanEasyconfigs(path.resolve(checkout)) : new Map(),
    policy: opts.policy,
    now: opts.now ?? Date.now(),
    includeReferenced: Boolean(opts.includeReferenced),
  });
}

export function blockedError(plan: Plan): RefusedError {
  const b = plan.decisions.filter((d) => d.action === 'blocked');
  return new RefusedError('referenced', `${b.length} broken image(s) are still referenced: ${b.map((d) => `${d.dir}/${d.name} by ${d.references.join(', ')}`).join('; ')}`, { hint: 'rerun with --include-referenced to archive those EasyConfigs and move the links too' });
}

function sameStatSync(tree: Tree, rel: string, key: StatKey): boolean {
  try {
    return sameStat(key, statKey(fsSync.statSync(path.join(tree.root, rel))));
  } catch {
    return false;
  }
}

function quarantinePaths(tree: Tree, dir: string, name: string): { file: string; manifest: string } {
  const q = path.join(tree.quarantine, dir);
  return { file: path.join(q, name), manifest: path.join(q, `${name}.retired.json`) };
}

export async function retire(tree: Tree, opts: RetireOptions): Promise<RetireResult> {
  if (!opts.apply) {
    const plan = await computePlan(tree, opts);
    return { plan, applied: false };
  }
  return mutate(tree, 'retire', opts.signal, async () => {
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
      files.push({ path: a.from, op: `archived to ${a.to}` });
    }
    for (const l of plan.links) {
      throwIfAborted(opts.signal);
      const at = path.join(tree.sifImages, l.link);
      if (l.to) await symlinkAtomic(l.to, at);
      else {
        await fs.rm(at, { force: true });
        await fsyncDir(tree.sifImages);
      }
      files.push({ path: `${SIF_IMAGES}/${l.link}`, op: l.to ? `link -> ${l.to} (was ${l.from})` : `link removed (was ${l.from})` });
    }
    const ledger = new Map((await listLedger(tree)).map((e) => [e.name, e]));
    for (const d of plan.decisions.filter((x) => x.action === 'retire')) {
      throwIfAborted(opts.signal);
      const q = quarantinePaths(tree, d.dir, d.name);
      // A rename moves the inode's ctime: the other name of a hard-linked
      // image would look changed. Note which names the ledger vouched for.
      const entry = ledger.get(d.name);
      const vouched = entry ? Object.keys(entry.hashed).filter((rel) => rel !== `${d.dir}/${d.name}` && sameStatSync(tree, rel, entry.hashed[rel])) : [];
      await fs.mkdir(path.dirname(q.file), { recursive: true });
      // The record first, then the one rename: a crash leaves the file in one place or the other.
      await writeFileAtomic(q.manifest, JSON.stringify({ name: d.name, dir: d.dir, retiredAt: new Date().toISOString(), rule: d.rule, by: os.userInfo().username }, null, 2) + '\n');
      // A link (in a development clone) moves as a link: the file it points at is never touched.
      await fs.rename(path.join(tree.root, d.dir, d.name), q.file);
      await fsyncDir(path.join(tree.root, d.dir));
      if (entry) {
        delete entry.hashed[`${d.dir}/${d.name}`];
        for (const rel of vouched) entry.hashed[rel] = statKey(fsSync.statSync(path.join(tree.root, rel)));
        await writeLedger(tree, entry);
      }
      files.push({ path: `${d.dir}/${d.name}`, op: `quarantined (${d.rule})` });
    }
    return { value: { plan, applied: true }, files, detail: { retired: files.length } };
  });
}

export interface Quarantined {
  dir: string;
  name: string;
  file: string;
  manifest?: { retiredAt: string; rule: string };
  isLink: boolean;
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
      const manifest = await fs.readFile(path.join(q, `${name}.retired.json`), 'utf8').then((t) => JSON.parse(t), () => undefined);
      out.push({ dir, name, file: path.join(q, name), manifest, isLink: (await fs.lstat(path.join(q, name))).isSymbolicLink() });
    }
  }
  return out;
}

function runBackup(template: string, q: Quarantined, signal?: AbortSignal): Promise<{ ok: boolean; message: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = template.replace(/\{path\}/g, quote(q.file)).replace(/\{name\}/g, quote(q.name)).replace(/\{dir\}/g, quote(q.dir));
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-500)));
    child.on('error', (e) => resolve({ ok: false, message: e.message }));
    child.on('close', (code) => resolve({ ok: code === 0, message: code === 0 ? 'backed up' : `backup failed (exit ${code}): ${err.trim().split('\n').pop() ?? ''}` }));
  });
}

export interface PurgeResult {
  deleted: string[];
  kept: Array<{ name: string; why: string }>;
}

export async function purge(tree: Tree, policy: Policy, opts: { graceDays?: number; now?: number; signal?: AbortSignal } = {}): Promise<PurgeResult> {
  return mutate(tree, 'purge', opts.signal, async () => {
    const grace = opts.graceDays ?? policy.quarantineDays;
    const now = opts.now ?? Date.now();
    const result: PurgeResult = { deleted: [], kept: [] };
    const files: Array<{ path: string; op: string }> = [];
    for (const q of await listQuarantine(tree)) {
      throwIfAborted(opts.signal);
      const since = q.manifest ? Date.parse(q.manifest.retiredAt) : (await fs.lstat(q.file)).mtimeMs;
      const days = (now - since) / 86_400_000;
      if (days < grace) {
        result.kept.push({ name: `${q.dir}/${q.name}`, why: `in quarantine ${days.toFixed(1)} of ${grace} days` });
        continue;
      }
      // A link into another tree has nothing of ours to back up; removing it removes only the link.
      if (policy.backupCommand && !q.isLink) {
        const b = await runBackup(policy.backupCommand, q, opts.signal);
        if (!b.ok) {
          result.kept.push({ name: `${q.dir}/${q.name}`, why: b.message });
          files.push({ path: `${q.dir}/${q.name}`, op: `kept: ${b.message}` });
          continue;
        }
      }
      await fs.rm(q.file);
      await fs.rm(`${q.file}.retired.json`, { force: true });
      await fsyncDir(path.dirname(q.file));
      // The checksum record goes with the last copy of the image.
      const elsewhere = [TESTED, EASYBUILD].some((d) => fsSync.existsSync(path.join(tree.root, d, q.name)));
      if (!elsewhere) await fs.rm(ledgerPath(tree, q.name), { force: true });
      result.deleted.push(`${q.dir}/${q.name}`);
      files.push({ path: `${q.dir}/${q.name}`, op: 'purged' });
    }
    return { value: result, files };
  });
}

export async function restore(tree: Tree, nameArg: string, opts: { dir?: string; signal?: AbortSignal } = {}): Promise<{ restored: string }> {
  const name = nameArg.endsWith('.sif') ? nameArg : `${nameArg}.sif`;
  return mutate(tree, 'restore', opts.signal, async () => {
    const hits = (await listQuarantine(tree)).filter((q) => q.name === name && (!opts.dir || q.dir === opts.dir));
    if (!hits.length) throw new InputError('not-quarantined', `${name} is not in the quarantine${opts.dir ? ` of ${opts.dir}` : ''}`);
    if (hits.length > 1) throw new InputError('ambiguous', `${name} is quarantined from both ${TESTED} and ${EASYBUILD}; give --dir`);
    const q = hits[0];
    const target = path.join(tree.root, q.dir, q.name);
    if (fsSync.existsSync(target)) throw new RefusedError('exists', `${q.dir}/${q.name} exists again; not overwriting it`);
    await fs.rename(q.file, target);
    await fsyncDir(path.dirname(target));
    await fs.rm(`${q.file}.retired.json`, { force: true });
    return { value: { restored: `${q.dir}/${q.name}` }, files: [{ path: `${q.dir}/${q.name}`, op: 'restored from quarantine' }] };
  });
}
