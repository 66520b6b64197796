/**
 * The hosts a tree promises to serve, and what they say about its
 * images. `sifkit host record` keeps snapshots in `.sifkit/hosts/` (under
 * the lock, audited, renamed into place); `compat --root` checks every
 * promoted image against a snapshot (each distinct file once: images
 * with the same content, hard links among them, are read once); promote
 * refuses an image that breaks against a recorded one.
 */
import { commandLine } from '../emit/bash';
import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { RefusedError, errnoCode } from '../errors';
import { checkCompat, readSnapshot, type CompatImage, type CompatOptions } from '../compat/run';
import type { CompatReport } from '../compat/check';
import { parseSifFileName } from '../recipe/names';
import { TEMP_MARKER, mkdirShared, writeFileAtomic } from '../util/files';
import { checkName as checkNameRule } from '../validate/names';
import type { HostSnapshot } from '../validate/schemas/host';
import { readLedger } from './ledger';
import { mutate } from './mutate';
import { gatherLinks, scanEasyconfigs } from './retire-gather';
import { EASYBUILD, STATE, type Tree } from './root';

const HOSTS = 'hosts';

function hostsDir(tree: Tree): string {
  return path.join(tree.state, HOSTS);
}

/** Records (or replaces) a snapshot the tree promises to serve, as `.sifkit/hosts/<name>.json`. */
export async function recordHost(
  tree: Tree,
  snapshot: HostSnapshot,
  nameArg: string | undefined,
  signal?: AbortSignal,
): Promise<{ name: string; path: string; replaced: boolean }> {
  const name = checkNameRule('variant', nameArg ?? snapshot.host, '--name');
  const file = path.join(hostsDir(tree), `${name}.json`);
  const rel = `${STATE}/${HOSTS}/${name}.json`;
  return mutate(tree, 'host-record', signal, async (changes) => {
    await mkdirShared(hostsDir(tree));
    const before = await fs.readFile(file).catch((e: unknown) => {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    });
    await writeFileAtomic(file, JSON.stringify(snapshot, null, 1) + '\n');
    changes.made(() => (before ? writeFileAtomic(file, before) : fs.rm(file, { force: true })));
    return {
      value: { name, path: file, replaced: Boolean(before) },
      files: [{ path: rel, op: before ? 'replace host snapshot' : 'record host snapshot' }],
      detail: { host: snapshot.host, takenAt: snapshot.takenAt },
    };
  });
}

/** The snapshots the tree promises to serve, by name. */
export async function recordedHosts(tree: Tree): Promise<Array<{ name: string; snapshot: HostSnapshot }>> {
  let names: string[];
  try {
    names = await fs.readdir(hostsDir(tree));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
  const out: Array<{ name: string; snapshot: HostSnapshot }> = [];
  for (const f of names.sort()) {
    if (!f.endsWith('.json') || f.includes(TEMP_MARKER)) continue;
    out.push({ name: f.slice(0, -5), snapshot: await readSnapshot(path.join(hostsDir(tree), f)) });
  }
  return out;
}

/** The first break of a report, in words. */
export function firstBreak(r: CompatReport): string {
  const b = r.breaks[0];
  if (b)
    return b.kind === 'missing-version'
      ? `${b.file} needs ${b.version} from ${b.library}, which ${b.provider} does not define`
      : b.provider
        ? `${b.file} needs ${b.library}, and the dynamic linker stops at ${b.provider}, which is no library it can load`
        : `${b.file} needs ${b.library}, found nowhere`;
  const m = r.mpi.find((x) => !x.ok);
  return m ? `MPI ${m.library}: ${m.why}` : 'compatible';
}

/**
 * Refuses (exit 3) a staged image that breaks against a snapshot the tree
 * records. Nothing recorded: nothing promised, nothing to refuse.
 */
export async function compatGate(tree: Tree, name: string, opts: CompatOptions = {}): Promise<CompatReport[]> {
  const file = path.join(tree.tested, name);
  // Not staged: promote says so in its own words.
  if (
    !(await fs.stat(file).then(
      (s) => s.isFile(),
      () => false,
    ))
  )
    return [];
  return checkAgainstRecorded(tree, { kind: 'sif', path: file }, name, opts);
}

/** As compatGate, for a SIF not yet in the tree (the release checks it before its tests). */
export async function checkAgainstRecorded(
  tree: Tree,
  image: CompatImage,
  name: string,
  opts: CompatOptions = {},
): Promise<CompatReport[]> {
  const hosts = await recordedHosts(tree);
  if (!hosts.length) return [];
  const reports = await checkCompat(
    image,
    hosts.map((h) => h.snapshot),
    opts,
  );
  const bad = reports.map((r, i) => ({ r, host: hosts[i].name })).filter((x) => !x.r.compatible);
  if (bad.length) {
    const n = bad[0].r.breaks.length + bad[0].r.mpi.filter((m) => !m.ok).length;
    throw new RefusedError(
      'host-incompatible',
      `${name} breaks on host ${bad.map((b) => b.host).join(', ')}: ${firstBreak(bad[0].r)}${n > 1 ? ` (and ${n - 1} more)` : ''}`,
      {
        hint: `${commandLine(['sifkit', 'compat', image.kind === 'sif' ? image.path : `docker-daemon:${image.ref}`, ...bad.flatMap((b) => ['--host', path.join(hostsDir(tree), `${b.host}.json`)])])} shows every break; --no-compat promotes anyway`,
      },
    );
  }
  return reports;
}

export interface PromotedImage {
  name: string;
  path: string;
  /** sif-images links that point at it. */
  links: string[];
  /** EasyConfigs that name it (with --easyconfigs). */
  easyconfigs: string[];
  /** Another image with the same content, checked once for both. */
  sameAs?: string;
}

/** The images users reach: files in easybuild-sif-images/ and the targets of sif-images/ links. */
export async function promotedImages(tree: Tree, easyconfigs?: string): Promise<PromotedImage[]> {
  const byName = new Map<string, PromotedImage>();
  const add = (name: string, dir: string) => {
    if (!byName.has(name))
      byName.set(name, { name, path: path.join(tree.root, dir, name), links: [], easyconfigs: [] });
  };
  try {
    for (const n of fsSync.readdirSync(tree.easybuild).sort())
      if (parseSifFileName(n)?.ext === 'sif' && !n.includes(TEMP_MARKER)) add(n, EASYBUILD);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  for (const l of await gatherLinks(tree)) {
    if (!l.targetDir || !parseSifFileName(l.targetName)) continue;
    add(l.targetName, l.targetDir);
    byName.get(l.targetName)!.links.push(l.name);
  }
  const refs = easyconfigs ? await scanEasyconfigs(easyconfigs) : undefined;
  // Same content, checked once: the ledger's digest, else the same inode.
  const seen = new Map<string, string>();
  for (const img of byName.values()) {
    if (refs) img.easyconfigs = refs.get(parseSifFileName(img.name)!.dockerhash) ?? [];
    const e = await readLedger(tree, img.name).catch(() => undefined);
    let key = e?.sha256;
    if (!key) {
      try {
        const st = fsSync.statSync(img.path);
        key = `${st.dev}:${st.ino}`;
      } catch {
        continue; // a dangling link: the tree's verify reports it
      }
    }
    const first = seen.get(key);
    if (first) img.sameAs = first;
    else seen.set(key, img.name);
  }
  return [...byName.values()];
}

export interface TreeCompatRow extends PromotedImage {
  reports: CompatReport[];
  error?: string;
}

/** Every promoted image against each snapshot: which would break and which still work. */
export async function treeCompat(
  tree: Tree,
  hosts: HostSnapshot[],
  opts: CompatOptions & { easyconfigs?: string; onImage?: (name: string) => void } = {},
): Promise<TreeCompatRow[]> {
  const images = await promotedImages(tree, opts.easyconfigs);
  const done = new Map<string, TreeCompatRow>();
  for (const img of images) {
    if (img.sameAs) continue;
    opts.onImage?.(img.name);
    try {
      done.set(img.name, { ...img, reports: await checkCompat({ kind: 'sif', path: img.path }, hosts, opts) });
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') done.set(img.name, { ...img, reports: [], error: 'file missing' });
      else throw e;
    }
  }
  return images.map((img) =>
    img.sameAs
      ? {
          ...img,
          reports: (done.get(img.sameAs)?.reports ?? []).map((r) => ({ ...r, image: img.path })),
          error: done.get(img.sameAs)?.error,
        }
      : done.get(img.name)!,
  );
}
