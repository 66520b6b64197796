/**
 * What the retire plan is made from, read from the tree and an EasyConfig
 * checkout: the images with their metadata, the links, and which active
 * EasyConfigs name which SIF. The reads are synchronous (thousands of
 * small ones are quicker so) but give the event loop a turn every few
 * dozen, so the lock's heartbeat keeps beating during a long scan.
 */

const TURN_EVERY = 64;
import * as fsSync from 'node:fs';
import * as path from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { InputError, errnoCode } from '../errors';
import { parseSifFileName } from '../recipe/names';
import { inspectSifSync } from '../sif/inspect';
import { labelFacts } from '../validate/labels';
import { type LedgerEntry } from './ledger';
import { EASYBUILD, TESTED, type Tree } from './root';
import type { ImageDir, TreeImage, TreeLink } from './retire-plan';
import { linkTargetOf } from './links';

export async function scanEasyconfigs(checkout: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let seen = 0;
  const walk = async (rel: string): Promise<void> => {
    let entries: fsSync.Dirent[];
    try {
      entries = fsSync.readdirSync(path.join(checkout, rel), { withFileTypes: true });
    } catch (e) {
      if (rel === '')
        throw new InputError('no-easyconfigs', `cannot read the EasyConfig checkout ${checkout}: ${errnoCode(e) ?? e}`);
      return;
    }
    for (const e of entries) {
      if (++seen % TURN_EVERY === 0) await turn();
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name !== '__archive__' && e.name !== '.git') await walk(r);
      } else if (e.name.endsWith('.eb')) {
        const text = fsSync.readFileSync(path.join(checkout, r), 'utf8');
        const hashes = new Set<string>();
        for (const m of text.matchAll(/dockerhash-([0-9a-f]{12})\b/g)) hashes.add(m[1]);
        for (const m of text.matchAll(/local_dockerhash\s*=\s*['"]([0-9a-f]{12})['"]/g)) hashes.add(m[1]);
        for (const h of hashes) out.set(h, [...(out.get(h) ?? []), r]);
      }
    }
  };
  await walk('');
  return out;
}

/** What the tree holds, for the plan: ledger first, SIF labels for the rest. */
export async function gatherImages(tree: Tree, ledger: Map<string, LedgerEntry>): Promise<TreeImage[]> {
  const images: TreeImage[] = [];
  let seen = 0;
  for (const dir of [TESTED, EASYBUILD] as ImageDir[]) {
    let names: string[] = [];
    try {
      names = fsSync.readdirSync(path.join(tree.root, dir));
    } catch {
      continue;
    }
    for (const name of names) {
      if (++seen % TURN_EVERY === 0) await turn();
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
          const l = labelFacts(inspectSifSync(abs).labels, abs);
          created = Date.parse(l.created ?? '');
          recipe = l.recipe;
          params = l.params;
        } catch {
          /* unreadable, or labels that fail the name rule: judged by its name and mtime */
        }
      }
      if (Number.isNaN(created)) created = (lst.isSymbolicLink() ? fsSync.statSync(abs) : lst).mtimeMs;
      images.push({
        dir,
        name,
        stem: e?.stem ?? parsed.stem,
        dockerhash: e?.dockerhash ?? parsed.dockerhash,
        recipe,
        params,
        created,
        isLink: lst.isSymbolicLink(),
      });
    }
  }
  return images;
}

export async function gatherLinks(tree: Tree): Promise<TreeLink[]> {
  const links: TreeLink[] = [];
  let names: string[] = [];
  try {
    names = fsSync.readdirSync(tree.sifImages);
  } catch {
    return links;
  }
  for (const [i, name] of names.entries()) {
    if (i % TURN_EVERY === TURN_EVERY - 1) await turn();
    let target: string;
    try {
      target = fsSync.readlinkSync(path.join(tree.sifImages, name));
    } catch {
      continue;
    }
    const t = linkTargetOf(tree, target);
    links.push({ name, target, targetDir: t.dir, targetName: t.image });
  }
  return links;
}
