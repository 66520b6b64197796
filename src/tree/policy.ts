/**
 * The retention policy (pipelines/retention.yaml), validated by its schema
 * with errors that name the key. Pure.
 */
import { fillShell } from '../emit/bash';
import { parseYaml } from '../util/yaml';
import type { z } from 'zod';
import { InputError } from '../errors';
import { parseDocument } from '../validate/schema';
import { policySchema } from '../validate/schemas/config';
import { EASYBUILD, TESTED } from './names';

export type Grouping = 'stem' | 'rocm-minor' | 'app';

type DirPolicyDoc = NonNullable<NonNullable<z.infer<typeof policySchema>['directories']>['tested-containers']>;

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

/** The policy file checked by its schema (validate/schemas/config.ts), defaults filled in. */
export function parsePolicy(text: string, source: string): Policy {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new InputError('bad-policy', `${source}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const d = parseDocument(policySchema, doc ?? {}, source, 'bad-policy');
  const dirPolicy = (p: DirPolicyDoc | undefined, dflt: DirPolicy): DirPolicy => ({
    keepNewest: p?.keep_newest ?? dflt.keepNewest,
    series: p?.series ?? dflt.series,
    keepYoungerThanDays: p?.keep_younger_than_days ?? dflt.keepYoungerThanDays,
  });
  return {
    directories: {
      [TESTED]: dirPolicy(d.directories?.[TESTED], { keepNewest: 2, series: ['stem'], keepYoungerThanDays: 14 }),
      [EASYBUILD]: dirPolicy(d.directories?.[EASYBUILD], { keepNewest: 3, series: ['stem'], keepYoungerThanDays: 180 }),
    },
    pinned: d.pinned ?? [],
    broken: d.broken ?? [],
    quarantineDays: d.quarantine_days ?? 30,
    // Its placeholders are checked now (known, outside quotes), before any file is touched.
    backupCommand:
      d.backup_command === undefined
        ? undefined
        : (fillShell(d.backup_command, { path: '', name: '', dir: '' }, "the policy's backup_command"),
          d.backup_command),
    easyconfigs: d.easyconfigs,
  };
}
