/**
 * sifkit as a library: the same steps the commands take, as functions over
 * plain data. Each takes an AbortSignal where it does work that can be
 * stopped, throws a SifkitError subclass (InputError, OperationError,
 * RefusedError, InterruptedError) with an exit code, and never prints.
 *
 *   import { render, build, convert, stage, promote, planRetirement } from 'sifkit';
 *
 * The CLI (src/cli/) is a layer over this entry point: it imports sifkit's
 * code from here only (test/unit/layering.test.ts holds it to that), so
 * whatever a command does, a program can do too.
 */

// Recipes and rendering.
export {
  renderRecipe as render,
  readRecipeInputs,
  type RenderOptions,
  type RecipeInputs,
} from './recipe/render-recipe';
export { loadRecipe } from './recipe/load';
export { listRecipes, defaultDefsRoot } from './recipe/list';
export { parseSets, resolveValues, variantValues } from './recipe/params';
export { renderVariant, LABEL, type RenderedVariant, type RenderInputs, type Provenance } from './recipe/render';
export { ymd } from './recipe/names';
export { terminalBlock, terminalLine, terminalMessage } from './emit/terminal';
export { bashWord, commandLine } from './emit/bash';
export { isValidName } from './validate/names';
export type { ParamSpec, ParamValues, Recipe, VariantNames } from './recipe/types';

// Declared sources: the pins a variant builds from, and the cache that holds them.
export { sourcesOf, sourcesLabel, type ResolvedSource, type SourceProvenance } from './recipe/sources';
export { defaultSourceCache, fetchSources, type FetchedSource, type FetchOptions } from './sources/cache';

// Building through an image engine (the Docker Engine API).
export { buildVariant as build, type BuildOptions } from './engine/build';
export type { BuildRecord } from './engine/build-record';
export { connectEngine, engineFailure } from './engine/client';
export type {
  BuildRequest,
  ContainerHandle,
  ContainerSpec,
  ImageDetails,
  ImageEngine,
  ImageSummary,
} from './engine/engine';
export type { BuildJson } from './validate/schemas/build';

// SIF conversion and inspection.
export { convert, parseBackend, type Backend, type ConvertOptions, type ConvertRecord } from './convert/convert';
export {
  COMPRESSIONS,
  DEFAULT_MKSQUASHFS_MEM,
  parseCompression,
  parseMem,
  type Compression,
} from './convert/squash-options';
export { reconvertAndCompare } from './convert/reconvert';
export { reconvertTree } from './convert/reconvert-tree';
export { attestSif, type AttestResult } from './convert/attach';
export { inspectSif as inspect, type SifSummary } from './sif/inspect';
export { archName } from './sif/format';
export {
  signSif,
  verifySif,
  verifyFailure,
  type SignResult,
  type VerifyReport,
  type SignatureCheck,
} from './sif/signature';
export { loadSigningKey, loadVerifiers, type SigningKey, type VerifierFlags } from './sif/keys';

// Testing, results and the report.
export { gateError, recipeForTarget, runTests, type TestOptions, type TestOutcome } from './checks/run';
export { selectChecks } from './checks/spec';
export { resolveTarget, type TestTarget } from './checks/target';
export {
  DEFAULT_RESULTS_DIR,
  latestRun,
  readAllResults,
  readResults,
  resultsDirFor,
  resultsFor,
  resultsPath,
  runVerdict,
  type TestRun,
  type TestVerdict,
} from './checks/results';
export { reportHtml } from './checks/report';
export { gateSummary, isTolerance, runGateSummary } from './checks/gate';

// The container tree: stage, promote, verify, retire.
export { initTree, openTree, resolveRoot, treeAt, EASYBUILD, SIF_IMAGES, TESTED, type Tree } from './tree/root';
export { sifIdentity, stage, type StageOptions, type StageRecord } from './tree/stage';
export { promote, parseTarget, type PromoteOptions, type PromoteRecord, type PromoteTarget } from './tree/promote';
export { parsePolicy, type Policy } from './tree/policy';
export { loadPolicyFile } from './tree/policy-file';
/** The retirement plan as data (changes nothing); `retire({ apply: true })` carries one out. */
export {
  blockedError,
  computePlan as planRetirement,
  purge,
  purgeError,
  restore,
  retire,
  type Decision,
  type Plan,
  type RetireOptions,
  type RetireResult,
} from './tree/retire';
export { treeStatus, type ImageStatus, type TreeStatus } from './tree/status';
export { verifyTree, type Problem } from './tree/verify';
export { listLedger } from './tree/ledger';
export { trustedKeysFromFlags } from './tree/trust';
export { describeLock, lockHolder } from './tree/lock';
export { mutate } from './tree/mutate';

// EasyConfigs, modules and the GitHub pull request of a release.
export { imageFacts, locateSif } from './easybuild/facts';
export { definitionFor, releaseFiles } from './easybuild/files';
export { moduleScripts, moduleText } from './easybuild/module';
export { DEFAULT_API_URL, apiBase, octokitHost } from './github/octokit';
export { publishPullRequest } from './github/pull-request';
export { easyconfigArchivePath, branchName, packageDir, prBody } from './github/pr-content';

// Pipelines: stages over a typed context, locally or through Slurm.
export { STAGES } from './pipeline/registry';
export { loadPipeline, type PipelineDef } from './pipeline/definition';
export { RUNNERS, STAGE_WITH, toleranceText } from './pipeline/stage-with';
export { newContext, type RunEffects } from './pipeline/run-state';
export { planRun } from './pipeline/build-order';
export { planBuilds, type BuildPlan, type PlannedVariant } from './pipeline/build-plan';
export { buildSteps, type BuildStep } from './recipe/steps';
export { chooseRenderer, runPipeline, type RunSettings } from './pipeline/runner';
export type { PipelineContext, PipelineOptions } from './pipeline/context';
export { runOnSlurm } from './pipeline/slurm-executor';
export { cancelAll, readJobs, refresh, stateFileFor, writeJobs } from './pipeline/slurm-jobs';
export { isDone, isEnded, parseSlurmSettings, phase, splitForSlurm, type JobRecord } from './pipeline/slurm-plan';

// Host compatibility: what a module binds, against what an image needs.
export { takeSnapshot } from './compat/snapshot';
export { glibcVersion } from './compat/versions';
export {
  bindsOf,
  checkCompat,
  parseCompatImage,
  parseMpiLevel,
  readSnapshot,
  type BindSource,
  type CompatImage,
  type CompatOptions,
} from './compat/run';
export { DATA_BINDS } from './compat/binds';
export type { CompatReport } from './compat/check';
export type { Break } from './compat/linker';
export type { MpiFinding, MpiLevel } from './compat/mpi';
export { hostSnapshotSchema, type HostSnapshot } from './validate/schemas/host';
export { provenanceDocSchema } from './validate/schemas/provenance';
export {
  checkAgainstRecorded,
  compatGate,
  firstBreak,
  promotedImages,
  recordHost,
  recordedHosts,
  treeCompat,
  type PromotedImage,
  type TreeCompatRow,
} from './tree/compat';

// Files written safely.
export { makeOutputDir, refuseOverwrite, writeInside } from './util/outdir';
export { ownTempBytes } from './util/progress';
export { writeFileAtomic } from './util/files';

// Errors and exit codes.
export {
  ExitCode,
  InputError,
  InterruptedError,
  OperationError,
  RefusedError,
  SifkitError,
  errnoCode,
  fromSystemError,
  isSifkitError,
} from './errors';
export { sifkitVersion } from './provenance';
