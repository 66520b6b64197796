import type { RenderedVariant } from '../recipe/render';
import type { ParamValues, Recipe } from '../recipe/types';

/** What one variant has gathered so far; stages fill it in. */
export interface VariantState {
  values: ParamValues;
  rendered?: RenderedVariant;
  /** Results of later stages, by stage name (build, convert, ...). */
  results: Record<string, unknown>;
  /** Stages that were skipped, with why. */
  skipped: Record<string, string>;
  error?: Error;
  /** The stage that failed, when one did. */
  failedStage?: string;
}

/** The typed context every pipeline task gets. */
export interface PipelineContext {
  recipe: Recipe;
  variants: VariantState[];
  /** One per run, created by the CLI; every effect honours it. */
  signal: AbortSignal;
  /** Stage options from the command line (server files dir, rebuild...). */
  options: Record<string, unknown>;
  /** YYYYMMDD for EasyConfig names. */
  date: string;
}

/** Progress a stage can report; the runner routes it to listr2. */
export interface StageReporter {
  /** One line of progress (shown under the task). */
  progress(line: string): void;
  /** Change the task title. */
  title(title: string): void;
}

export interface Stage {
  name: string;
  title: string;
  /** Does the work for one variant; throws a SifkitError on failure. */
  run(ctx: PipelineContext, variant: VariantState, report: StageReporter, opts: Record<string, string>): Promise<void>;
  /** Why this stage need not run for this variant (already done), or undefined. */
  skip?(ctx: PipelineContext, variant: VariantState, opts: Record<string, string>): Promise<string | undefined>;
}
