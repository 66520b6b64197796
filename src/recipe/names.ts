import { checkName } from '../validate/names';
import type { Naming, ParamValues, VariantNames } from './types';

/** YYYYMMDD of a date, in UTC. */
export function ymd(date: Date): string {
  return date.toISOString().slice(0, 10).replace(/-/g, '');
}

/**
 * The names a variant gets, as LUMI spells them (reference §2):
 * tag `lumi/lumi-mpi4py:rocm-6.2.0-python-3.12-mpi4py-3.1.6`,
 * stem `lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6`,
 * EasyConfig `mpi4py-3.1.6-rocm-6.2.0-python-3.12-singularity-20241007.eb`.
 */
export function variantNames(naming: Naming, values: ParamValues, date: string): VariantNames {
  const suffix = namingSuffix(naming, values);
  const others = naming.parts
    .filter(([, param]) => param !== naming.version)
    .map(([label, param]) => `${label}-${values[param]}`);
  const moduleVersion = [values[naming.version], ...others, 'singularity', date].join('-');
  // Parameter values end up in file and image names: each name passes the one rule here.
  const source = `names of the ${naming.app} variant`;
  return {
    tag: checkName('tag', `${naming.prefix}/${naming.prefix}-${naming.app}:${suffix}`, source),
    stem: checkName('stem', `${naming.prefix}-${naming.app}-${suffix}`, source),
    easyconfig: checkName('easyconfig', `${naming.app}-${moduleVersion}.eb`, source),
    module: checkName('module', `${naming.app}/${moduleVersion}`, source),
  };
}

/** What tells a recipe's variants apart in their names: `rocm-6.2.0-python-3.12-mpi4py-3.1.6`. */
export function namingSuffix(naming: Naming, values: ParamValues): string {
  return naming.parts.map(([label, param]) => `${label}-${values[param]}`).join('-');
}

/** `<stem>-dockerhash-<12 hex>.sif`, the versioned file name. */
export function sifFileName(stem: string, dockerhash: string, ext: 'sif' | 'tar' = 'sif'): string {
  return `${stem}-dockerhash-${dockerhash}.${ext}`;
}

/** The first 12 hex digits of an image ID (`sha256:...` or bare). */
export function dockerhashOf(imageId: string): string {
  return imageId.replace(/^sha256:/, '').slice(0, 12);
}

/** Splits `<stem>-dockerhash-<12hex>.<ext>`; undefined when it does not follow the convention. */
export function parseSifFileName(file: string): { stem: string; dockerhash: string; ext: string } | undefined {
  const m = /^(.+)-dockerhash-([0-9a-f]{12})\.(sif|tar)$/.exec(file);
  return m ? { stem: m[1], dockerhash: m[2], ext: m[3] } : undefined;
}
