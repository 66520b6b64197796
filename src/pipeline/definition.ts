import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { InputError, errnoCode } from '../errors';
import { shippedDir } from '../util/package';

/** A pipeline file: stages as data, run in order for each variant. */
export interface PipelineDef {
  name: string;
  description: string;
  stages: StageRef[];
  /** Where conversion and tests run: here (default) or as Slurm jobs (`executor: slurm`). */
  executor?: 'local' | 'slurm';
  /** The `slurm:` block as written (per-stage resources), checked by parseSlurmSettings. */
  slurm?: unknown;
}

export interface StageRef {
  stage: string;
  /** Stage options from the file (e.g. `to: all` for promote). */
  with: Record<string, string>;
}

/** Validates a pipeline document against the known stage names. Pure. */
export function parsePipeline(text: string, source: string, knownStages: readonly string[]): PipelineDef {
  const fail = (m: string): never => {
    throw new InputError('bad-pipeline', `${source}: ${m}`);
  };
  let doc: unknown;
  try {
    doc = parseYaml(text, { schema: 'failsafe' });
  } catch (e) {
    fail(`not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return fail('must be a mapping');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!['name', 'description', 'stages', 'executor', 'slurm'].includes(k)) fail(`unknown key ${k}`);
  if (typeof d.name !== 'string') fail('name must be a string');
  if (!Array.isArray(d.stages) || d.stages.length === 0) fail('stages must be a non-empty list');
  const stages = (d.stages as unknown[]).map((s, i): StageRef => {
    if (typeof s === 'string') s = { stage: s };
    if (typeof s !== 'object' || s === null) return fail(`stages[${i}] must be a stage name or a mapping`);
    const o = s as Record<string, unknown>;
    if (typeof o.stage !== 'string') return fail(`stages[${i}].stage must be a string`);
    if (!knownStages.includes(o.stage)) fail(`stages[${i}]: unknown stage ${o.stage} (known: ${knownStages.join(', ')})`);
    const w = o.with ?? {};
    if (typeof w !== 'object' || w === null || Array.isArray(w)) return fail(`stages[${i}].with must be a mapping`);
    return { stage: o.stage, with: w as Record<string, string> };
  });
  if (d.executor !== undefined && d.executor !== 'local' && d.executor !== 'slurm') fail(`executor ${JSON.stringify(d.executor)} is not local or slurm`);
  return {
    name: d.name as string,
    description: typeof d.description === 'string' ? d.description : '',
    stages,
    ...(d.executor !== undefined ? { executor: d.executor as 'local' | 'slurm' } : {}),
    ...(d.slurm !== undefined ? { slurm: d.slurm } : {}),
  };
}

export function defaultPipelinesRoot(): string {
  return shippedDir('pipelines', 'SIFKIT_PIPELINES');
}

/** Loads `NAME` (from the pipelines directory) or a path to a YAML file. */
export async function loadPipeline(ref: string, knownStages: readonly string[], root = defaultPipelinesRoot()): Promise<PipelineDef> {
  const file = ref.includes('/') || ref.endsWith('.yaml') ? path.resolve(ref) : path.join(root, `${ref}.yaml`);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new InputError('unknown-pipeline', `no pipeline ${ref} (looked for ${file}: ${errnoCode(e) ?? 'unreadable'})`);
  }
  return parsePipeline(text, path.basename(file), knownStages);
}
