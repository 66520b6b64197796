import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { InputError, errnoCode, isSifkitError } from '../errors';
import { readRegularFile } from '../util/files';
import { shippedDir } from '../util/package';
import { escapeForMessage } from '../validate/names';
import { parseDocument } from '../validate/schema';
import { pipelineSchema } from '../validate/schemas/config';

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
  const d = parseDocument(pipelineSchema, doc, source, 'bad-pipeline');
  d.stages.forEach((s, i) => {
    if (!knownStages.includes(s.stage)) fail(`stages[${i}].stage: expected one of ${knownStages.join(', ')}, found ${escapeForMessage(s.stage)}`);
  });
  return {
    name: d.name,
    description: d.description ?? '',
    stages: d.stages,
    ...(d.executor !== undefined ? { executor: d.executor } : {}),
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
    text = await readRegularFile(file, 'pipeline');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError('unknown-pipeline', `no pipeline ${ref} (looked for ${file}: ${errnoCode(e) ?? 'unreadable'})`);
  }
  return parsePipeline(text, path.basename(file), knownStages);
}
