/**
 * A recipe's test suite: each check says how many ranks, nodes and GPUs it
 * needs, its environment, the command run after `$WITH_CONDA`, and how it
 * is judged (exit code always; expected output; OSU figures). Read once,
 * when the recipe loads (recipe/schema.ts): the runners take these objects.
 * Pure.
 */
import { InputError } from '../errors';

export type FigureKind = 'latency' | 'bandwidth';

export interface Check {
  name: string;
  ranks: number;
  nodes: number;
  gpus: number;
  env: Record<string, string>;
  /**
   * Variables removed before the command: the job's environment reaches
   * the container (singularity passes it on), and LUMI's host-buffer test
   * runs with MPICH_GPU_SUPPORT_ENABLED unset, not set to 0.
   */
  unset: string[];
  command: string;
  /** A substring, or `/regex/`, that the output must contain. */
  expect?: string;
  /** Parse the output as OSU and keep these figures. */
  figures?: FigureKind;
  timeoutSeconds: number;
}

function int(v: unknown, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new InputError('bad-check', `${what} must be a whole number, not ${JSON.stringify(v)}`);
  return n;
}

export function parseChecks(raw: unknown[], recipe: string): Check[] {
  const names = new Set<string>();
  return raw.map((r, i) => {
    const where = `recipe ${recipe}, check ${i + 1}`;
    if (!r || typeof r !== 'object' || Array.isArray(r))
      throw new InputError('bad-check', `${where}: a check is a mapping`);
    const o = r as Record<string, unknown>;
    const known = ['name', 'ranks', 'nodes', 'gpus', 'env', 'unset', 'command', 'expect', 'figures', 'timeout'];
    for (const k of Object.keys(o))
      if (!known.includes(k))
        throw new InputError('bad-check', `${where}: unknown key ${k} (known: ${known.join(', ')})`);
    const name = String(o.name ?? '');
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(name))
      throw new InputError(
        'bad-check',
        `${where}: name ${JSON.stringify(name)} must be lower-case letters, digits, - and _`,
      );
    if (names.has(name)) throw new InputError('bad-check', `${where}: two checks are named ${name}`);
    names.add(name);
    if (typeof o.command !== 'string' || !o.command.trim())
      throw new InputError('bad-check', `${where} (${name}): command is missing`);
    const env = (o.env ?? {}) as Record<string, unknown>;
    if (typeof env !== 'object' || Array.isArray(env))
      throw new InputError('bad-check', `${where} (${name}): env is a mapping`);
    for (const k of Object.keys(env))
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
        throw new InputError('bad-check', `${where} (${name}): ${k} is not a variable name`);
    const unset = o.unset ?? [];
    if (!Array.isArray(unset) || !unset.every((k) => typeof k === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)))
      throw new InputError('bad-check', `${where} (${name}): unset is a list of variable names`);
    for (const k of unset as string[])
      if (k in env) throw new InputError('bad-check', `${where} (${name}): ${k} is both set and unset`);
    if (o.figures !== undefined && o.figures !== 'latency' && o.figures !== 'bandwidth')
      throw new InputError('bad-check', `${where} (${name}): figures is latency or bandwidth`);
    return {
      name,
      ranks: Math.max(1, int(o.ranks, `${where} ranks`, 1)),
      nodes: Math.max(1, int(o.nodes, `${where} nodes`, 1)),
      gpus: int(o.gpus, `${where} gpus`, 0),
      env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
      unset: unset as string[],
      command: o.command,
      expect: o.expect === undefined ? undefined : String(o.expect),
      figures: o.figures as FigureKind | undefined,
      timeoutSeconds: Math.max(1, int(o.timeout, `${where} timeout`, 600)),
    };
  });
}
