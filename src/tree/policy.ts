/**
 * The retention policy (pipelines/retention.yaml), validated with errors
 * that name the key. Pure.
 */
import { parse as parseYaml } from 'yaml';
import { InputError } from '../errors';
import { EASYBUILD, TESTED } from './root';

export type Grouping = 'stem' | 'rocm-minor' | 'app';

export interface DirPolicy {
  keepNewest: number;
  series: Grouping[];
  keepYoungerThanDays: number;
}

export interface Policy {
  directories: Record<typeof TESTED | typeof EASYBUILD, DirPolicy>;
  pinned: string[];
  broken: Array<{ name: string; reason: string }>;
  quarantineDays: number;
  backupCommand?: string;
  easyconfigs?: string;
}

const GROUPINGS: Grouping[] = ['stem', 'rocm-minor', 'app'];

export function parsePolicy(text: string, source: string): Policy {
  const fail = (m: string): never => {
    throw new InputError('bad-policy', `${source}: ${m}`);
  };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    fail(`not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const obj = (v: unknown, what: string): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(`${what} must be a mapping`));
  const d = obj(doc ?? {}, 'the policy');
  const known = ['directories', 'pinned', 'broken', 'quarantine_days', 'backup_command', 'easyconfigs'];
  for (const k of Object.keys(d)) if (!known.includes(k)) fail(`unknown key ${k} (known: ${known.join(', ')})`);
  const count = (v: unknown, what: string, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`${what} must be a whole number >= 0, not ${JSON.stringify(v)}`);
    return v as number;
  };
  const dirs = obj(d.directories ?? {}, 'directories');
  for (const k of Object.keys(dirs)) if (k !== TESTED && k !== EASYBUILD) fail(`directories: ${k} is not ${TESTED} or ${EASYBUILD} (sif-images holds links, which follow the images)`);
  const dirPolicy = (name: string, dflt: DirPolicy): DirPolicy => {
    const p = obj(dirs[name] ?? {}, `directories.${name}`);
    for (const k of Object.keys(p)) if (!['keep_newest', 'series', 'keep_younger_than_days'].includes(k)) fail(`directories.${name}: unknown key ${k}`);
    const series = p.series === undefined ? dflt.series : p.series;
    if (!Array.isArray(series) || !series.length) fail(`directories.${name}.series must be a non-empty list of ${GROUPINGS.join(', ')}`);
    for (const g of series as unknown[]) if (!GROUPINGS.includes(g as Grouping)) fail(`directories.${name}.series: ${JSON.stringify(g)} is not one of ${GROUPINGS.join(', ')}`);
    return {
      keepNewest: count(p.keep_newest, `directories.${name}.keep_newest`, dflt.keepNewest),
      series: series as Grouping[],
      keepYoungerThanDays: count(p.keep_younger_than_days, `directories.${name}.keep_younger_than_days`, dflt.keepYoungerThanDays),
    };
  };
  const pinned = d.pinned ?? [];
  if (!Array.isArray(pinned) || pinned.some((x) => typeof x !== 'string')) fail('pinned must be a list of image names');
  const broken = d.broken ?? [];
  if (!Array.isArray(broken)) fail('broken must be a list of {name, reason}');
  const brokenList = (broken as unknown[]).map((b, i) => {
    const o = obj(b, `broken[${i}]`);
    if (typeof o.name !== 'string' || !o.name) fail(`broken[${i}].name is missing`);
    if (typeof o.reason !== 'string' || !o.reason.trim()) fail(`broken[${i}] (${o.name}) needs a reason`);
    return { name: o.name as string, reason: o.reason as string };
  });
  if (d.backup_command !== undefined && (typeof d.backup_command !== 'string' || !d.backup_command.includes('{path}'))) fail('backup_command must be a command with {path} in it');
  return {
    directories: {
      [TESTED]: dirPolicy(TESTED, { keepNewest: 2, series: ['stem'], keepYoungerThanDays: 14 }),
      [EASYBUILD]: dirPolicy(EASYBUILD, { keepNewest: 3, series: ['stem'], keepYoungerThanDays: 180 }),
    } as Policy['directories'],
    pinned: pinned as string[],
    broken: brokenList,
    quarantineDays: count(d.quarantine_days, 'quarantine_days', 30),
    backupCommand: d.backup_command as string | undefined,
    easyconfigs: d.easyconfigs === undefined ? undefined : String(d.easyconfigs),
  };
}
