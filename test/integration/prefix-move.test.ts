/**
 * Moving a prefix between engines (issue 27 item 2), against two real
 * engines: the local one and a private second dockerd. A variant built
 * before the run on the second engine holds three steps the run's
 * variants share; the plan sends one of them to the first engine and
 * moves that image there (docker save | docker load) rather than running
 * the three steps again. The build on the first engine takes them from
 * the loaded image: its first layers are the second engine's, byte for
 * byte (a step run again would write its file at another time).
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { engineAddress } from '../../src/engine/client';
import { planRun } from '../../src/pipeline/build-order';
import type { PipelineContext, PipelineOptions } from '../../src/pipeline/context';
import { STAGES } from '../../src/pipeline/registry';
import { newContext } from '../../src/pipeline/run-state';
import { runPipeline } from '../../src/pipeline/runner';
import { loadRecipe } from '../../src/recipe/load';
import { resolveValues } from '../../src/recipe/params';
import type { Recipe } from '../../src/recipe/types';
import { docker, engine, removeTestImages, testDefinition } from '../support/engine';
import { startSecondEngine, type SecondEngine } from '../support/second-engine';
import Docker from 'dockerode';
import { Readable } from 'node:stream';

jest.setTimeout(600_000);

process.env.SIFKIT_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'sifkit-state-'));

/** Three steps every variant shares, then four of its own: moving the three costs less than running them. */
async function writeMoveRecipe(dir: string): Promise<string> {
  const defs = path.join(dir, 'defs', 'h49move');
  await fs.mkdir(defs, { recursive: true });
  await fs.writeFile(
    path.join(defs, 'main.docker'),
    testDefinition([
      'RUN echo one > /one',
      'RUN echo two > /two',
      'RUN echo three > /three',
      ...['a', 'b', 'c', 'd'].map((x) => `RUN echo "{{ v }} ${x}" > /${x}`),
      'ENV WITH_CONDA="true"',
    ]),
  );
  await fs.writeFile(
    path.join(defs, 'recipe.yaml'),
    `name: h49move
naming: { prefix: sifkittest, app: h49move, version: v, parts: [[v, v]] }
fragments: [h49move/main.docker]
parameters: { v: { type: version, default: '1.0' } }
checks:
  - { name: version, command: 'cat /a', expect: 'a' }
testing:
  local: { launcher: '' }
`,
  );
  return defs;
}

describe('a prefix another engine holds is moved there by save/load, on two real engines', () => {
  let dir: string;
  let recipe: Recipe;
  let engine2: SecondEngine;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-prefix-move-'));
    recipe = await loadRecipe(await writeMoveRecipe(dir));
    engine2 = await startSecondEngine();
  });
  afterAll(async () => {
    await engine2?.stop();
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const context = (versions: string[], options: PipelineOptions): PipelineContext =>
    newContext({
      recipe,
      values: versions.map((v) => resolveValues(recipe, { v })),
      signal: new AbortController().signal,
      options: { logDir: path.join(dir, 'logs'), ...options },
      date: '20261203',
    });

  async function build(ctx: PipelineContext): Promise<void> {
    await runPipeline(
      {
        name: 'h49',
        description: 'render and build',
        stages: ['render', 'build'].map((stage) => ({ stage, with: {} })),
      },
      ctx,
      STAGES,
      { renderer: 'silent', jobs: 1 },
    );
    expect(ctx.variants.map((v) => v.error?.message)).toEqual(ctx.variants.map(() => undefined));
  }

  it('plans the move, loads the image on the first engine and builds there from it', async () => {
    const held = context(['1.0'], { engines: [engine2.address] });
    await build(held);
    const heldId = held.variants[0].results.build!.imageId;
    const heldTag = held.variants[0].results.build!.imageTag;
    const local = new Docker();
    await expect(local.getImage(heldId).inspect()).rejects.toMatchObject({ statusCode: 404 });

    const engines = [engineAddress(), engine2.address];
    const plan = await planRun(context(['2.0', '3.0'], { engines }));
    // 2.0 goes where the three steps are; 3.0 would wait behind it there: it goes to the first engine, with a move.
    expect(plan.variants[0]).toMatchObject({ engine: engine2.address });
    expect(plan.variants[0].move).toBeUndefined();
    expect(plan.variants[1]).toMatchObject({
      engine: engineAddress(),
      move: { from: engine2.address, image: heldId, ref: heldTag, heavy: 3 },
    });
    expect(plan.engines[0].moved).toBeGreaterThanOrEqual(5); // FROM, LABEL, three RUNs (and the rest of the image)

    const run = context(['2.0', '3.0'], { engines });
    await build(run);
    const moved = run.variants[1];
    expect(moved.results.engine).toBe(engineAddress());
    // The image arrived with its own tag.
    const loaded = await local.getImage(heldId).inspect();
    expect(loaded.RepoTags).toContain(heldTag);
    // Its three shared layers are the second engine's, not run again here.
    const layers = async (d: Docker, id: string) => ((await d.getImage(id).inspect()).RootFS.Layers ?? []) as string[];
    const base = (await layers(docker, 'sifkit-test/busybox:latest')).length;
    const fromEngine2 = (
      await layers(new Docker({ socketPath: engine2.address.replace(/^unix:\/\//, '') }), heldId)
    ).slice(0, base + 3);
    expect((await layers(local, moved.results.build!.imageId)).slice(0, base + 3)).toEqual(fromEngine2);
    expect(fromEngine2).toHaveLength(base + 3);
    // The build log says the steps came from the cache.
    const log = await fs.readFile(moved.results.build!.logPath!, 'utf8');
    expect((log.match(/Using cache/g) ?? []).length).toBeGreaterThanOrEqual(3);
  });

  it('a load the engine refuses, or whose stream fails, rejects in one line (the build then runs the steps)', async () => {
    await expect(engine.loadImage(Readable.from([Buffer.from('not a docker archive')]))).rejects.toMatchObject({
      code: 'load-failed',
      message: expect.stringMatching(/^the engine at .* did not load the image: /),
    });
    const failing = new Readable({ read() {} });
    failing.push(Buffer.alloc(4096));
    setImmediate(() => failing.destroy(new Error('the other engine went away')));
    await expect(engine.loadImage(failing)).rejects.toMatchObject({
      code: 'load-failed',
      message: expect.stringMatching(/the image stream to .* failed: the other engine went away$/),
    });
  });
});
