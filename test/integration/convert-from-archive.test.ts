/**
 * The convert stage reads the image's docker archive when it is there
 * (issue 27: a release costs its distinct work), against the real engine
 * and the real mksquashfs: a pass that saved the archive without a SIF,
 * then a pass that converts, leaves the engine with no further save and
 * no export; an archive of another image under the variant's name is not
 * taken for it.
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { convertSource } from '../../src/convert/convert';
import type { ImageEngine } from '../../src/engine/engine';
import type { PipelineContext } from '../../src/pipeline/context';
import { STAGES } from '../../src/pipeline/registry';
import { newContext } from '../../src/pipeline/run-state';
import { runPipeline } from '../../src/pipeline/runner';
import { loadRecipe } from '../../src/recipe/load';
import { resolveValues } from '../../src/recipe/params';
import type { Recipe } from '../../src/recipe/types';
import { inspectSif } from '../../src/sif/inspect';
import { LABEL } from '../../src/validate/labels';
import { BUSYBOX, engine, removeTestImages, writeTinyRecipe } from '../support/engine';

jest.setTimeout(300_000);

// Verdicts of this run apart from the user's.
process.env.SIFKIT_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'sifkit-state-'));

/** The real engine, counting what reads an image out of it: saves, and the containers an export needs. */
function counting(e: ImageEngine): { engine: ImageEngine; saves: () => number; containers: () => number } {
  let saves = 0;
  let containers = 0;
  const wrapped = Object.create(e) as ImageEngine;
  wrapped.saveImage = (ref) => {
    saves++;
    return e.saveImage(ref);
  };
  wrapped.createContainer = (spec) => {
    containers++;
    return e.createContainer(spec);
  };
  return { engine: wrapped, saves: () => saves, containers: () => containers };
}

describe('convert from an existing docker archive, on the real engine', () => {
  let dir: string;
  let recipe: Recipe;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-convert-archive-'));
    recipe = await loadRecipe(await writeTinyRecipe(dir));
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** One pass of these stages on a fresh context, over the counting engine. */
  async function pass(stages: string[]): Promise<{ ctx: PipelineContext; saves: number; containers: number }> {
    const c = counting(engine);
    const ctx = newContext({
      recipe,
      values: [resolveValues(recipe, {})],
      signal: new AbortController().signal,
      options: { outDir: path.join(dir, 'out'), logDir: path.join(dir, 'logs') },
      date: '20261203',
      effects: { connectEngine: async () => c.engine },
    });
    const def = { name: 'h46', description: 'stages under test', stages: stages.map((stage) => ({ stage, with: {} })) };
    await runPipeline(def, ctx, STAGES, { renderer: 'silent', jobs: 1 });
    const v = ctx.variants[0];
    expect([v.failedStage, v.error?.message]).toEqual([undefined, undefined]);
    return { ctx, saves: c.saves(), containers: c.containers() };
  }

  it('converts the archive an earlier pass saved: no save and no export of the image', async () => {
    const first = await pass(['render', 'build', 'archive']);
    const archive = first.ctx.variants[0].results.archive!.path;
    const imageId = first.ctx.variants[0].results.build!.imageId;
    expect(first.saves).toBe(1);
    // No convert in that pass: the archive alone.
    expect((await fs.readdir(path.join(dir, 'out'))).filter((f) => f.endsWith('.sif'))).toEqual([]);

    const second = await pass(['render', 'build', 'archive', 'convert']);
    const v = second.ctx.variants[0];
    expect(v.skipped.archive).toBe(`${path.basename(archive)} is there`);
    expect([second.saves, second.containers]).toEqual([0, 0]);
    expect(v.results.convert!.source).toBe(`docker-archive:${archive}`);
    const sif = await inspectSif(v.results.convert!.out);
    expect(sif.labels[LABEL.imageId]).toBe(imageId);
    // The provenance names what was read.
    expect(sif.provenance).toMatchObject({ source: `docker-archive:${archive}`, image: { id: imageId } });

    // The same files as converting the image from the engine.
    const fromEngine = await convertSource({ kind: 'docker-daemon', ref: imageId }, path.join(dir, 'from-engine.sif'), {
      engine,
    });
    expect(v.results.convert!.files).toBe(fromEngine.files);
  });

  it('does not take an archive of another image under the name: it exports the image', async () => {
    const first = await pass(['render', 'build', 'archive', 'convert']);
    const v0 = first.ctx.variants[0];
    const archive = v0.results.archive!.path;
    await fs.rm(v0.results.convert!.out);
    // Another image's archive under this image's name (the base image's).
    await fs.rm(archive);
    await pipeline(await engine.saveImage(BUSYBOX), createWriteStream(archive));

    const again = await pass(['render', 'build', 'archive', 'convert']);
    const v = again.ctx.variants[0];
    expect(v.skipped.archive).toBe(`${path.basename(archive)} is there`);
    expect(again.saves).toBe(0);
    expect(again.containers).toBe(1);
    expect(v.results.convert!.source).toBe(`docker-daemon:${v.results.build!.imageId}`);
    expect((await inspectSif(v.results.convert!.out)).labels[LABEL.imageId]).toBe(v.results.build!.imageId);
  });
});
