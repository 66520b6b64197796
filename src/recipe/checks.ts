/**
 * A recipe's test suite: each check says how many ranks, nodes and GPUs it
 * needs, its environment, the command run after `$WITH_CONDA`, and how it
 * is judged (exit code always; expected output; OSU figures). Read once,
 * when the recipe loads (recipe/schema.ts): the runners take these objects.
 * Pure.
 */
import { z } from 'zod';
import { parseDocument } from '../validate/schema';
import { checksDocSchema } from '../validate/schemas/checks';

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

/**
 * The recipe's `checks:` list, checked by its one schema
 * (validate/schemas/checks.ts): a wrong one is a single line naming the
 * recipe and the field (`checks[2].ranks`).
 */
export function parseChecks(raw: unknown[], recipe: string): Check[] {
  const docs = parseDocument(z.object({ checks: checksDocSchema }), { checks: raw }, `recipe ${recipe}`, 'bad-check');
  return docs.checks.map((c) => ({
    name: c.name,
    ranks: Math.max(1, c.ranks ?? 1),
    nodes: Math.max(1, c.nodes ?? 1),
    gpus: c.gpus ?? 0,
    env: { ...c.env },
    unset: c.unset ?? [],
    command: c.command,
    expect: c.expect,
    figures: c.figures,
    timeoutSeconds: Math.max(1, c.timeout ?? 600),
  }));
}
