/**
 * sifkit as a library: the same steps the commands take, as functions over
 * plain data. Each takes an AbortSignal where it does work that can be
 * stopped, throws a SifkitError subclass (InputError, OperationError,
 * RefusedError, InterruptedError) with an exit code, and never prints.
 *
 *   const { render, build, convert, stage, promote, planRetirement } = require('sifkit');
 *
 * The CLI (src/cli/) is a layer over these; nothing here imports it.
 */

// Recipes and rendering.
export { renderRecipe as render, readRecipeInputs, type RenderOptions, type RecipeInputs } from './recipe/render-recipe';
export { loadRecipe, listRecipes, defaultDefsRoot } from './recipe/load';
export { resolveValues, variantValues } from './recipe/params';
export { renderVariant, LABEL, type RenderedVariant, type RenderInputs, type Provenance } from './recipe/render';
export type { ParamSpec, ParamValues, Recipe, VariantNames } from './recipe/types';

// Building through the Docker Engine API.
export { buildVariant as build, type BuildOptions, type BuildRecord } from './engine/build';
export { connectEngine } from './engine/client';
export type { BuildRequest, ContainerHandle, ContainerSpec, ImageDetails, ImageEngine, ImageSummary } from './engine/engine';

// SIF conversion and inspection.
export { convert, type Backend, type ConvertOptions, type ConvertRecord } from './convert/convert';
export { inspectSif as inspect, type SifSummary } from './sif/inspect';

// Testing.
export { runTests, type TestOptions, type TestOutcome } from './checks/run';

// The container tree: stage, promote, retire.
export { openTree, resolveRoot, type Tree } from './tree/root';
export { stage, type StageOptions, type StageRecord } from './tree/stage';
export { promote, parseTarget, type PromoteOptions, type PromoteRecord, type PromoteTarget } from './tree/promote';
export { parsePolicy, type Policy } from './tree/policy';
/** The retirement plan as data (changes nothing); `retire({ apply: true })` carries one out. */
export { computePlan as planRetirement, retire, type Decision, type Plan, type RetireOptions, type RetireResult } from './tree/retire';
export { treeStatus, type ImageStatus, type TreeStatus } from './tree/status';

// Errors and exit codes.
export { ExitCode, InputError, InterruptedError, OperationError, RefusedError, SifkitError, isSifkitError } from './errors';
export { sifkitVersion } from './provenance';
