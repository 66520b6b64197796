import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { parseYaml } from '../util/yaml';
import { z } from 'zod';
import { InputError, errnoCode, isSifkitError } from '../errors';
import { readRegularFile } from '../util/files';
import { shippedDir } from '../util/package';
import { escapeForMessage } from '../validate/names';
import { formatIssue, parseDocument } from '../validate/schema';
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
  /**
   * Stage options from the file (e.g. `to: all` for promote), as the
   * stage's `with:` schema gave them at load: typed values (stage-with.ts).
   */
  with: Readonly<Record<string, unknown>>;
}

/**
 * What loading a pipeline knows of each stage: what it needs from earlier
 * stages and what it gives later ones (a Stage is one). Strings here, so
 * this module needs nothing of the context's types.
 */
export interface StageContract {
  needs?: readonly string[];
  gives?: readonly string[];
  /** Its `with:` options (stage-with.ts), checked at load; a stage without one takes none. */
  with?: z.ZodType;
}

const NO_OPTIONS = z.strictObject({});

export type StageCatalog = Readonly<Record<string, StageContract>>;

/** The first stage (in order) that needs what no stage before it gives, as a message; undefined when the order holds. */
export function missingNeed(stages: readonly StageRef[], known: StageCatalog): string | undefined {
  const given = new Set<string>();
  for (const [i, ref] of stages.entries()) {
    const s = known[ref.stage];
    const lacking = (s.needs ?? []).filter((n) => !given.has(n));
    if (lacking.length)
      return `stages[${i}] ${ref.stage} needs ${lacking.join(' and ')}, which no stage before it gives`;
    for (const g of s.gives ?? []) given.add(g);
  }
  return undefined;
}

/** Validates a pipeline document against the known stages: their names and their order. Pure. */
export function parsePipeline(text: string, source: string, known: StageCatalog): PipelineDef {
  const knownStages = Object.keys(known);
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
  const stages = d.stages.map((s, i): StageRef => {
    if (!Object.hasOwn(known, s.stage))
      fail(`stages[${i}].stage: expected one of ${knownStages.join(', ')}, found ${escapeForMessage(s.stage)}`);
    // Every stage's options, before any stage runs.
    const r = (known[s.stage].with ?? NO_OPTIONS).safeParse(s.with);
    if (!r.success)
      throw new InputError(
        'bad-pipeline',
        formatIssue(r.error.issues[0], s.with, `${source}: stages[${i}] ${s.stage}: with`),
      );
    return { stage: s.stage, with: r.data as Record<string, unknown> };
  });
  const missing = missingNeed(stages, known);
  if (missing) fail(missing);
  return {
    name: d.name,
    description: d.description ?? '',
    stages,
    ...(d.executor !== undefined ? { executor: d.executor } : {}),
    ...(d.slurm !== undefined ? { slurm: d.slurm } : {}),
  };
}

export function defaultPipelinesRoot(): string {
  return shippedDir('pipelines', 'SIFKIT_PIPELINES');
}

/** The pipelines shipped in `root`, by name. */
async function pipelineNames(root: string): Promise<string[]> {
  const names = await fs.readdir(root).catch(() => [] as string[]);
  return names
    .filter((n) => n.endsWith('.yaml'))
    .map((n) => n.slice(0, -'.yaml'.length))
    .sort();
}

/** Loads `NAME` (from the pipelines directory) or a path to a YAML file. */
export async function loadPipeline(
  ref: string,
  known: StageCatalog,
  root = defaultPipelinesRoot(),
): Promise<PipelineDef> {
  const file = ref.includes('/') || ref.endsWith('.yaml') ? path.resolve(ref) : path.join(root, `${ref}.yaml`);
  let text: string;
  try {
    text = await readRegularFile(file, 'pipeline');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError(
      'unknown-pipeline',
      `no pipeline ${ref} (looked for ${file}: ${errnoCode(e) ?? 'unreadable'})`,
      {
        hint: `a pipeline is a name in ${root} (${(await pipelineNames(root)).join(', ') || 'none there'}), or a path to a YAML file`,
      },
    );
  }
  return parsePipeline(text, path.basename(file), known);
}
