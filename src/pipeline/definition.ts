import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { InputError, errnoCode, isSifkitError } from '../errors';
import { readRegularFile } from '../util/files';
import { shippedDir } from '../util/package';

/** A pipeline file: stages as data, run in order for each variant. */
export interface PipelineDef {
  name: string;
  description: string;
  stages: StageRef[];
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
  for (const k of Object.keys(d)) if (!['name', 'description', 'stages'].includes(k)) fail(`unknown key ${k}`);
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
  return { name: d.name as string, description: typeof d.description === 'string' ? d.description : '', stages };
}

export function defaultPipelinesRoot(): string {
  return shippedDir('pipelines', 'SIFKIT_PIPELINES');
}

/** Loads `NAME` (from the pipelines directory) or a path to a YAML file. */
export async function loadPipeline(ref: string, knownStages: readonly string[], root = defaultPipelinesRoot()): Promise<PipelineDef> {
  const file = ref.includes('/') || ref.endsWith('.yaml') ? path.resolve(ref) : path.join(root, `${ref}.yaml`);
  let text: string;
  try {
    text = await readRegularFile(file, 'pipeline');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError('unknown-pipeline', `no pipeline ${ref} (looked for ${file}: ${errnoCode(e) ?? 'unreadable'})`);
  }
  return parsePipeline(text, path.basename(file), knownStages);
}
