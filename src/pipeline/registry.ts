/**
 * Every stage sifkit knows, by the name pipeline files use. The registry
 * imports the stage modules and none of them imports it back, so the
 * registry is complete whichever module Node happens to load first
 * (test/unit/layering.test.ts loads them in every order).
 */
import type { Stage } from './context';
import { archiveStage, convertStage, promoteStage, retireStage, stagingStage, testStage } from './release-stages';
import { buildStage, renderStage } from './stages';

export const STAGES: Readonly<Record<string, Stage>> = Object.freeze({
  render: renderStage,
  build: buildStage,
  archive: archiveStage,
  convert: convertStage,
  test: testStage,
  stage: stagingStage,
  promote: promoteStage,
  retire: retireStage,
});

/** The stage names, in pipeline order, for validating pipeline files. */
export const STAGE_NAMES: readonly string[] = Object.keys(STAGES);
