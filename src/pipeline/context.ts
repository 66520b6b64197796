/**
 * The one typed context of a pipeline run: what the command line asked
 * for (PipelineOptions), what each variant has gathered (VariantResults),
 * and the run's own state (RunState: engines, slots, the things done once),
 * made fresh for each run by newContext (run-state.ts). Types only.
 */
import type { z } from 'zod';
import type { TestRun } from '../checks/results';
import type { Backend, ConvertRecord } from '../convert/convert';
import type { Compression } from '../convert/squash-options';
import type { SlurmProfile } from '../recipe/testing';
import type { PendingScan } from '../engine/build';
import type { BuildRecord } from '../engine/build-record';
import type { ImageEngine } from '../engine/engine';
import type { FileServers } from '../fileserver/shared';
import type { RecipeInputs } from '../recipe/render-recipe';
import type { SigningKey } from '../sif/keys';
import type { RenderedVariant } from '../recipe/render';
import type { ParamValues, Recipe } from '../recipe/types';
import type { PromoteRecord, PromoteTarget } from '../tree/promote';
import type { PurgeResult } from '../tree/quarantine';
import type { RetireResult } from '../tree/retire';
import type { Tree } from '../tree/names';
import type { StageRecord } from '../tree/stage';
import type { BuildPlan } from './build-plan';
import type { JobRecord } from './slurm-plan';

/** The engine the stages hand to build, convert and the runners. */
export type PipelineEngine = ImageEngine;

/** How a run reaches an image engine: an address (undefined: DOCKER_HOST or the local socket). */
export type ConnectEngine = (address: string | undefined, signal: AbortSignal) => Promise<PipelineEngine>;

/** What the build and release stages accept, from the command line. */
export interface PipelineOptions {
  // build
  /** Licensed files served to the build (default: the recipe's). */
  serverFiles?: string;
  rebuild?: boolean;
  logDir?: string;
  extraLabels?: Record<string, string>;
  /** The source cache (default: defaultSourceCache()). */
  sourceCache?: string;
  /** Refuse sources missing from the cache. */
  offline?: boolean;
  // release
  /** Where SIFs are written. */
  outDir?: string;
  /**
   * The container tree, opened once by the caller (test gates against it and
   * records there; stage, promote and retire write to it). Without it those
   * stages refuse, and test runs ungated by a tree.
   */
  tree?: Tree;
  runner?: 'local' | 'slurm';
  resultsDir?: string;
  untested?: boolean;
  /** Overrides the pipeline file's promote `to:` (parsed by the command line). */
  to?: PromoteTarget;
  tolerance?: number;
  /** convert: what `sifkit convert` takes besides where the SIF goes. */
  convert?: { backend?: Backend; fixPerms?: boolean; compression?: Compression; mem?: string; processors?: number };
  /** test: what `sifkit test` takes besides the runner, results and tolerance. */
  test?: {
    only?: string[];
    baseline?: string;
    gate?: boolean;
    workdir?: string;
    slurm?: Partial<Pick<SlurmProfile, 'partition' | 'srun' | 'container' | 'launcher'>>;
  };
  /** promote: allow moving a link back to an older image. */
  rollback?: boolean;
  /** promote (and the compat stage): false skips the check against the tree's recorded hosts (--no-compat). */
  compat?: boolean;
  policy?: string;
  easyconfigs?: string;
  /** convert: the key that signs each SIF after its SBOM and provenance are added (the build signature). */
  signingKey?: SigningKey;
  /** promote: the key of the tested signature a tree's trust policy asks for. */
  testedKey?: SigningKey;
  /** Retire carries its plan out only when told (--apply, or `apply: 'true'` in the pipeline file), as `sifkit retire` does. */
  apply?: boolean;
  includeReferenced?: boolean;
  /** retire: also delete quarantined files older than the grace period (after the policy's backup). */
  purge?: boolean;
  graceDays?: number;
  // the run
  /** Engine addresses to spread variants over, in turn (--engines). */
  engines?: string[];
  /** How many builds at once on each engine, and conversions at once on this host (--build-jobs, --convert-jobs); 1 each when unset. */
  slots?: Partial<Record<SlotKind, number>>;
}

/** Work with its own bound on concurrency, whatever the number of variants at once. */
export type SlotKind = 'build' | 'convert';

/** The docker archive saved beside the SIF. */
export interface ArchiveRecord {
  path: string;
  size: number;
}

/** What the stages recorded for one variant, by the stage that gives it. */
export interface VariantResults {
  build?: BuildRecord;
  archive?: ArchiveRecord;
  convert?: ConvertRecord;
  test?: TestRun;
  stage?: StageRecord;
  promote?: PromoteRecord;
  retire?: RetireResult & { purge?: PurgeResult };
  /** The engine address the variant was given ('default' for the local one). */
  engine?: string;
  /** The Slurm jobs that converted and tested it (--on slurm). */
  slurm?: { convert?: JobRecord; test?: JobRecord };
}

/** What a stage can need and give: the rendered definition or one of the results. */
export type Product = 'rendered' | Exclude<keyof VariantResults, 'engine' | 'slurm'>;

/** What one variant has gathered so far; stages fill it in. */
export interface VariantState {
  values: ParamValues;
  rendered?: RenderedVariant;
  results: VariantResults;
  /** Stages that were skipped, with why. */
  skipped: Record<string, string>;
  error?: Error;
  /** The stage that failed, when one did. */
  failedStage?: string;
  /** A build whose leak scan waits for the archive stage's one read of the image (not output). */
  pendingScan?: PendingScan;
}

/** A value made at most once per run, by the first stage that asks. */
export interface Once<T> {
  get(make: () => Promise<T>): Promise<T>;
}

/** The engines of a run, one connection per address. */
export interface EnginePool {
  /** The address for the i-th variant: spread over the addresses in turn; '' is the default engine. */
  addressFor(index: number): string;
  /** The engine at an address, connected (and checked) on first use. */
  connect(address: string): Promise<PipelineEngine>;
}

/** Bounded concurrency per kind of work. */
export interface Slots {
  /** Runs fn in a slot of this kind; build slots are counted per engine (`on`, its address; '' the default one). */
  use<T>(kind: SlotKind, fn: () => Promise<T>, on?: string): Promise<T>;
}

/** The state of one run: made by newContext, never shared between runs. */
/** The run's build plan and the waits it asks for (pipeline/build-order.ts). */
export interface BuildOrder {
  plan: BuildPlan;
  /** The variant at this index has ended its build (built or failed). */
  ended(index: number): void;
  /** Until the variant at this index has ended its build, or the run is interrupted. */
  wait(index: number, signal: AbortSignal): Promise<void>;
}

/** The directory a run's builds are served (--server-files, else the recipe's server_files), and its digest. */
export interface RunServed {
  dir?: string;
  digest?: string;
  /** Why the digest is not known although a directory is named (it could not be read): the builds say it too. */
  unreadable?: string;
}

export interface RunState {
  engines: EnginePool;
  slots: Slots;
  /** The recipe's inputs, read once and shared by every variant's render. */
  recipeInputs: Once<RecipeInputs>;
  buildOrder: Once<BuildOrder>;
  /** The served directory of the run's builds and its digest, hashed once (build-order.ts runServed). */
  served: Once<RunServed>;
  /** The file servers the run's builds share, one per served digest, each stopped by its last build. */
  fileServers: FileServers;
  /** Retire runs once per run, whatever the number of variants. */
  retire: Once<RetireResult & { purge?: PurgeResult }>;
}

/** The typed context every pipeline task gets. */
export interface PipelineContext {
  recipe: Recipe;
  variants: VariantState[];
  /** One per run, created by the CLI; every effect honours it. */
  signal: AbortSignal;
  options: PipelineOptions;
  /** YYYYMMDD for EasyConfig names. */
  date: string;
  run: RunState;
  /** The stages the runner runs in this pass, in order (the Slurm executor runs the local ones first). */
  pass?: readonly string[];
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
  /** What it reads from earlier stages; loadPipeline refuses an order where no earlier stage gives it. */
  needs?: readonly Product[];
  /** What it leaves on the variant for later stages. */
  gives?: readonly Product[];
  /** The schema of its `with:` options (stage-with.ts), checked when the pipeline loads; none: it takes none. */
  with?: z.ZodType;
  /** Does the work for one variant; throws a SifkitError on failure. */
  /** `opts`: its `with:` options, as its schema gave them when the pipeline loaded (typed values). */
  run(
    ctx: PipelineContext,
    variant: VariantState,
    report: StageReporter,
    opts: Readonly<Record<string, unknown>>,
  ): Promise<void>;
  /** Why this stage need not run for this variant (already done), or undefined. */
  skip?(
    ctx: PipelineContext,
    variant: VariantState,
    opts: Readonly<Record<string, unknown>>,
  ): Promise<string | undefined>;
}
