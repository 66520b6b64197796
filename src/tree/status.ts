/**
 * `status`: every image in the tree, from directory listings, link reads,
 * the ledger and, for files the ledger does not know, the SIF header and
 * metadata (never whole files).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseSifFileName } from '../recipe/names';
import { inspectSif } from '../sif/inspect';
import type { ChecksumState } from './checksum';
import { labelFacts } from '../validate/labels';
import { latestRun, runVerdict, testRuns, type TestVerdict } from '../validate/schemas/results';
import { listLedger, sameStat, statKey, type LedgerEntry } from './ledger';
import { EASYBUILD, SIF_IMAGES, TESTED, type Tree } from './root';
import { readLinkIn } from './links';
import { trustPolicyPath } from './trust';

export interface ImageStatus {
  name: string;
  stem: string;
  dockerhash: string;
  params: Record<string, string>;
  dirs: string[];
  links: string[];
  size: number;
  ageDays?: number;
  imageCreated?: string;
  sha256?: string;
  /** Spelt as checksum.ts spells it (one word per state): stat unchanged since hashed, stat changed, never hashed. */
  checksum: Extract<ChecksumState, 'ok-cached' | 'unrecorded'> | 'changed';
  tests?: number;
  /** The latest recorded test run's verdict (a gate refusal shows as refused). */
  test?: TestVerdict;
}

export interface TreeStatus {
  root: string;
  images: ImageStatus[];
  links: Array<{ name: string; target: string; image?: string; dangling: boolean }>;
  /** The tree's trust policy file; absent when it has none (signatures are not enforced). */
  trustPolicy?: string;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch {
    return [];
  }
}

export async function treeStatus(tree: Tree, now = Date.now()): Promise<TreeStatus> {
  const ledger = new Map<string, LedgerEntry>((await listLedger(tree)).map((e) => [e.name, e]));
  const images = new Map<string, ImageStatus>();
  for (const dir of [TESTED, EASYBUILD]) {
    const names = (await listDir(path.join(tree.root, dir))).filter((n) => n.endsWith('.sif') && !n.startsWith('.'));
    for (let i = 0; i < names.length; i += 128) {
      await Promise.all(
        names.slice(i, i + 128).map(async (name) => {
          const rel = `${dir}/${name}`;
          let st;
          try {
            st = await fs.stat(path.join(tree.root, rel));
          } catch {
            return;
          }
          let img = images.get(name);
          const e = ledger.get(name);
          if (!img) {
            const parsed = parseSifFileName(name);
            let stem = e?.stem ?? parsed?.stem ?? '';
            let dockerhash = e?.dockerhash ?? parsed?.dockerhash ?? '';
            let params = e?.params ?? {};
            let created = e?.imageCreated;
            if (!e) {
              // Unknown to the ledger: read what the SIF says about itself.
              try {
                const l = labelFacts((await inspectSif(path.join(tree.root, rel))).labels, rel);
                stem = l.stem ?? stem;
                dockerhash = l.dockerhash ?? dockerhash;
                created = l.created;
                params = l.params;
              } catch {
                /* not a readable SIF, or labels that fail the name rule: verify reports it */
              }
            }
            img = {
              name,
              stem,
              dockerhash,
              params,
              dirs: [],
              links: [],
              size: st.size,
              imageCreated: created,
              sha256: e?.sha256,
              checksum: 'ok-cached',
              tests: e?.tests?.length,
              test: latestVerdict(e?.tests),
            };
            images.set(name, img);
          }
          img.dirs.push(dir);
          const age = (now - (created(img) ?? st.mtimeMs)) / 86_400_000;
          // Kept to the minute: a tenth of a day (2.4 h) would call a morning's images all "< 1 h" or all alike.
          img.ageDays = Math.max(img.ageDays ?? 0, Math.round(age * 1440) / 1440);
          if (!e) img.checksum = 'unrecorded';
          else if (img.checksum !== 'unrecorded' && !sameStat(e.hashed[rel], statKey(st))) img.checksum = 'changed';
        }),
      );
    }
  }
  const links: TreeStatus['links'] = [];
  for (const name of (await listDir(tree.sifImages)).filter((n) => !n.startsWith('.'))) {
    const link = await readLinkIn(tree, name).catch(() => undefined);
    if (!link) continue;
    const { target, image } = link;
    const dangling = !(await fs.stat(path.join(tree.sifImages, name)).then(
      () => true,
      () => false,
    ));
    links.push({ name, target, image, dangling });
    images.get(image)?.links.push(`${SIF_IMAGES}/${name}`);
  }
  const policy = trustPolicyPath(tree);
  const trustPolicy = (await fs.stat(policy).then(
    () => true,
    () => false,
  ))
    ? policy
    : undefined;
  return {
    root: tree.root,
    images: [...images.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    links,
    trustPolicy,
  };
}

function latestVerdict(tests: readonly unknown[] | undefined): TestVerdict | undefined {
  const last = latestRun(testRuns(tests));
  return last && runVerdict(last);
}

function created(img: ImageStatus): number | undefined {
  const t = img.imageCreated ? Date.parse(img.imageCreated) : NaN;
  return Number.isNaN(t) ? undefined : t;
}
