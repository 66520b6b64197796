/**
 * The retire plan, pure: what is in the tree, what references it, the
 * policy and now → one decision per image. No file is touched here.
 */
import type { Grouping, Policy } from './policy';
import { EASYBUILD, SIF_IMAGES, TESTED } from './names';

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
  for (const l of input.links)
    if (l.targetDir)
      linksTo.set(`${l.targetDir}/${l.targetName}`, [...(linksTo.get(`${l.targetDir}/${l.targetName}`) ?? []), l]);

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
      if (dir === EASYBUILD)
        for (const eb of input.easyconfigs.get(img.dockerhash) ?? []) references.push(`EasyConfig ${eb}`);
      const d: Decision = { dir, name: img.name, action: 'keep', rule: '', references };
      const ageDays = (now - img.created) / 86_400_000;
      const brokenReason = broken.get(img.name);
      if (pinned.has(img.name)) d.rule = 'pinned';
      else if (brokenReason !== undefined) {
        d.broken = brokenReason;
        d.action = 'retire';
        d.rule = `broken: ${brokenReason}`;
      } else if (ageDays < rules.keepYoungerThanDays)
        d.rule = `younger than ${rules.keepYoungerThanDays} days (${ageDays.toFixed(0)} d)`;
      else {
        const kept = rules.series
          .map((g) => [g, seriesKey(img, g)] as const)
          .find(([, k]) => k && (rank.get(k)?.get(img.name) ?? Infinity) < rules.keepNewest);
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
          for (const eb of input.easyconfigs.get(img.dockerhash) ?? [])
            if (dir === EASYBUILD) plan.archive.push({ from: eb, to: archiveTarget(eb), for: img.name });
          for (const l of linksTo.get(`${dir}/${img.name}`) ?? []) {
            // The newest sound image of the same stem takes the link over, else the link goes.
            const repl = input.images
              .filter((o) => o.stem === img.stem && o.name !== img.name && !broken.has(o.name))
              .sort((a, b) => b.created - a.created || (a.dir === EASYBUILD ? -1 : 1))[0];
            plan.links.push({
              link: l.name,
              from: l.target,
              to: repl ? `../${repl.dir}/${repl.name}` : undefined,
              for: img.name,
            });
          }
        }
      }
      decisions.push(d);
    }
  }
  return plan;
}

/** Every active EasyConfig in a checkout (not under __archive__) and the dockerhashes it names. */
