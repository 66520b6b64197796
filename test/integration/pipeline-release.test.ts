/**
 * The whole release pipeline (pipelines/release.yaml with the real stages)
 * over the in-memory engine: render, build, archive, convert (the fake's
 * export through the real mksquashfs, a local tool), test (the local
 * runner over scripted container output), stage and promote into a temp
 * container tree. No daemon. The engine reaches the stages the way the
 * real one does: through newContext's effects. In the integration tier,
 * not the unit tier: it runs the real mksquashfs and writes SIFs.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ContainerSpec } from '../../src/engine/engine';
import type { PipelineContext, PipelineOptions, VariantState } from '../../src/pipeline/context';
import { loadPipeline, type PipelineDef } from '../../src/pipeline/definition';
import { STAGES } from '../../src/pipeline/registry';
import { newContext } from '../../src/pipeline/run-state';
import { runPipeline } from '../../src/pipeline/runner';
import * as recipeLoad from '../../src/recipe/load';
import { loadRecipe } from '../../src/recipe/load';
import { dockerhashOf, sifFileName } from '../../src/recipe/names';
import { resolveValues } from '../../src/recipe/params';
import type { Recipe } from '../../src/recipe/types';
import { inspectSif } from '../../src/sif/inspect';
import { readLedger } from '../../src/tree/ledger';
import { treeAt, type Tree } from '../../src/tree/names';
import * as treeRoot from '../../src/tree/root';
import { initTree } from '../../src/tree/root';
import { linkName } from '../../src/tree/links';
import { LABEL } from '../../src/validate/labels';
import { FakeEngine, fakeImage, type FakeImage, type ScriptedBuild } from '../support/fake-engine';
import { Gate } from '../support/pipeline';
import { until } from '../support/poll';

// The convert stage also writes each SIF's SBOM: the first one compiles CycloneDX's JSON schema (seconds on a shared machine).
jest.setTimeout(20_000);

const RECIPE = 'unitrel';
const VERSIONS = ['1.0', '2.0'];

let defs: string;
let recipe: Recipe;
let def: PipelineDef;
let dir: string;
let tree: Tree;
const savedStateDir = process.env.SIFKIT_STATE_DIR;

beforeAll(async () => {
  defs = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-unit-release-defs-'));
  const rdir = path.join(defs, RECIPE);
  await fs.mkdir(rdir);
  await fs.writeFile(
    path.join(rdir, 'recipe.yaml'),
    [
      `name: ${RECIPE}`,
      `naming: { prefix: unittest, app: ${RECIPE}, version: v, parts: [[v, v]] }`,
      `fragments: [${RECIPE}/main.docker]`,
      'context: context',
      "parameters: { v: { type: version, default: '1.0' } }",
      'checks:',
      '  - name: greeting',
      '    command: cat /etc/greeting',
      `    expect: hello from ${RECIPE}`,
      '',
    ].join('\n'),
  );
  await fs.writeFile(
    path.join(rdir, 'main.docker'),
    'FROM busybox\nRUN echo "hello from unitrel {{ v }}" > /etc/greeting\n',
  );
  await fs.mkdir(path.join(rdir, 'context'));
  await fs.writeFile(path.join(rdir, 'context', 'greeting.txt'), 'hello\n');
  recipe = await loadRecipe(rdir, defs);
  def = await loadPipeline('release', STAGES);
});
afterAll(async () => {
  await fs.rm(defs, { recursive: true, force: true });
});

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-unit-release-'));
  // Opened once, as the CLI does, and handed to the run.
  tree = (await initTree(path.join(dir, 'root'))).tree;
  // Scan verdicts are kept per user by default: keep this test's in its own directory.
  process.env.SIFKIT_STATE_DIR = path.join(dir, 'state');
});
afterEach(async () => {
  if (savedStateDir === undefined) delete process.env.SIFKIT_STATE_DIR;
  else process.env.SIFKIT_STATE_DIR = savedStateDir;
  await fs.rm(dir, { recursive: true, force: true });
});

const options = (extra: PipelineOptions = {}): PipelineOptions => ({
  tree,
  outDir: path.join(dir, 'out'),
  resultsDir: path.join(dir, 'results'),
  logDir: path.join(dir, 'logs'),
  ...extra,
});

/**
 * An engine that builds each variant's image from the Dockerfile it is
 * sent (found by its definition hash), and whose containers print the
 * image's greeting. `breakBuild` and `badOutput` name a version whose
 * build fails at its RUN step, or whose check prints the wrong thing.
 */
class ReleaseEngine extends FakeEngine {
  /** The image built for each version. */
  readonly built = new Map<string, FakeImage>();
  breakBuild?: string;
  badOutput?: string;
  /** Held before each build, when set. */
  gate?: Gate;
  ctx?: PipelineContext;

  constructor() {
    super();
    this.buildFor = (dockerfile) => this.script(dockerfile);
    this.process = (spec) => this.run(spec);
  }

  private async script(dockerfile: string): Promise<ScriptedBuild> {
    await this.gate?.pass();
    const v = this.ctx!.variants.find((x) => x.rendered && dockerfile.includes(x.rendered.definitionHash));
    if (!v) throw new Error('ReleaseEngine: a Dockerfile of no variant');
    const version = v.values.v;
    const steps = [
      { stream: 'Step 1/2 : FROM busybox\n' },
      { stream: ' ---> 0123456789ab\n' },
      { stream: `Step 2/2 : RUN echo "hello from unitrel ${version}" > /etc/greeting\n` },
      { stream: ` ---> Running in ${version.replace('.', '').padEnd(64, 'c')}\n` },
    ];
    if (version === this.breakBuild) {
      const message = `The command '/bin/sh -c echo "hello from unitrel ${version}" > /etc/greeting' returned a non-zero code: 1`;
      return {
        lines: [
          ...steps,
          { stream: 'sh: cannot create /etc/greeting\n' },
          { errorDetail: { code: 1, message }, error: message },
        ],
      };
    }
    const img = await fakeImage({
      files: [
        { name: 'bin', type: 'directory' },
        { name: 'etc', type: 'directory' },
        { name: 'etc/greeting', content: `hello from unitrel ${version}\n` },
      ],
      labels: v.rendered!.labels,
    });
    this.built.set(version, img);
    return {
      lines: [...steps, { aux: { ID: img.id } }, { stream: `Successfully built ${img.id.slice(7, 19)}\n` }],
      image: img,
    };
  }

  private run(spec: ContainerSpec) {
    const version = [...this.built].find(([, img]) => img.id === spec.image)?.[0];
    if (!version) return { output: ['cat: /etc/greeting: No such file or directory\n'], exitCode: 1 };
    return version === this.badOutput
      ? { output: ['goodbye\n'], exitCode: 0 }
      : { output: [`hello from unitrel ${version}\n`], exitCode: 0 };
  }

  buildCount(): number {
    return this.ops().filter((op) => op === 'build').length;
  }
}

/** A run of the release pipeline over `engine`, connected through the run's effects. */
function contextFor(
  engine: ReleaseEngine,
  extra: PipelineOptions = {},
): { ctx: PipelineContext; connects: Array<string | undefined> } {
  const connects: Array<string | undefined> = [];
  const ctx = newContext({
    recipe,
    values: VERSIONS.map((v) => resolveValues(recipe, { v })),
    signal: new AbortController().signal,
    options: options(extra),
    date: '20261201',
    effects: {
      connectEngine: async (address) => {
        connects.push(address);
        return engine;
      },
    },
  });
  engine.ctx = ctx;
  return { ctx, connects };
}

async function release(engine: ReleaseEngine, extra: PipelineOptions = {}, jobs = 1): Promise<PipelineContext> {
  const { ctx } = contextFor(engine, extra);
  await runPipeline(def, ctx, STAGES, { renderer: 'silent', jobs });
  return ctx;
}

const byVersion = (ctx: PipelineContext, version: string): VariantState =>
  ctx.variants.find((v) => v.values.v === version)!;
const nameOf = (v: VariantState) => sifFileName(v.rendered!.names.stem, dockerhashOf(v.results.build!.imageId));
const exists = (file: string) =>
  fs.stat(file).then(
    () => true,
    () => false,
  );

/** Every stage's record for a variant that went through the whole release. */
async function expectReleased(v: VariantState, img: FakeImage, root: string): Promise<void> {
  const stem = v.rendered!.names.stem;
  const name = sifFileName(stem, dockerhashOf(img.id));
  const r = v.results;
  expect([v.failedStage, v.error]).toEqual([undefined, undefined]);
  expect(r.build).toMatchObject({
    imageId: img.id,
    dockerhash: dockerhashOf(img.id),
    tag: v.rendered!.names.tag,
    definitionHash: v.rendered!.definitionHash,
  });

  // Once staged, the tree's copies are the one home: none is left in --out.
  const tested = treeAt(root).tested;
  expect(r.archive?.path).toBe(path.join(tested, name.replace(/\.sif$/, '.tar')));
  expect(await fs.readFile(r.archive!.path)).toEqual(img.archive);
  expect(r.convert?.out).toBe(path.join(tested, name));
  for (const f of [name, name.replace(/\.sif$/, '.tar')]) expect(await exists(path.join(dir, 'out', f))).toBe(false);
  const sif = await inspectSif(r.convert!.out);
  expect(sif.labels).toMatchObject({
    [LABEL.imageId]: img.id,
    [LABEL.stem]: stem,
    [LABEL.recipe]: RECIPE,
    [LABEL.definitionHash]: v.rendered!.definitionHash,
  });
  expect(sif.partition).toMatchObject({ squashfsMagic: true });

  expect(r.test).toMatchObject({ image: name, stem, runner: 'local', passed: true, recipe: RECIPE });
  expect(r.test!.checks.map((c) => [c.name, c.passed])).toEqual([['greeting', true]]);

  const tree = treeAt(root);
  const staged = path.join(tree.tested, name);
  // --out and the tree share a file system here: the SIF went in by hard link, not by a copy.
  expect(r.stage).toMatchObject({ name, path: staged, linked: true });
  expect(await exists(staged)).toBe(true);
  const archive = name.replace(/\.sif$/, '.tar');
  expect(r.stage!.archive).toBe(archive);
  expect(await fs.readFile(path.join(tree.tested, archive))).toEqual(img.archive);
  const entry = await readLedger(tree, name);
  expect(entry).toMatchObject({
    sha256: r.stage!.sha256,
    size: r.stage!.size,
    archive: { name: archive, size: img.archive.length },
  });
  expect(entry!.tests?.some((t) => (t as { passed: boolean }).passed)).toBe(true);

  const link = path.join(tree.sifImages, linkName(stem));
  expect(r.promote?.link?.path).toBe(link);
  expect(path.basename(await fs.readlink(link))).toBe(name);
  expect(r.promote?.easybuild).toMatchObject({ path: path.join(tree.easybuild, name), how: 'hardlink' });
  expect((await fs.stat(path.join(tree.easybuild, name))).ino).toBe((await fs.stat(staged)).ino);
}

describe('the release pipeline over the in-memory engine', () => {
  it('runs every stage for each variant and records its typed result', async () => {
    const engine = new ReleaseEngine();
    const { ctx, connects } = contextFor(engine);
    const spies = {
      loadRecipe: jest.spyOn(recipeLoad, 'loadRecipe'),
      loadRecipeByName: jest.spyOn(recipeLoad, 'loadRecipeByName'),
      openTree: jest.spyOn(treeRoot, 'openTree'),
      listContext: jest.spyOn(recipeLoad, 'listContext'),
    };
    const calls: Record<string, number> = {};
    try {
      await runPipeline(def, ctx, STAGES, { renderer: 'silent', jobs: 1 });
    } finally {
      // Counted before restoring: mockRestore clears what a spy saw.
      for (const [name, spy] of Object.entries(spies)) {
        calls[name] = spy.mock.calls.length;
        spy.mockRestore();
      }
    }
    // Objects, not strings: the stages use the recipe the run loaded and the tree it was handed; the build
    // context is listed once, when the recipe's inputs are read, for every variant's render and build. The
    // engine is asked about an image once, by the build (its size, and the engine version that built it, which
    // the build record carries to the provenance), and the image leaves it once: one save for scan, archive and SIF.
    expect(calls).toEqual({ loadRecipe: 0, loadRecipeByName: 0, openTree: 0, listContext: 1 });
    for (const img of engine.built.values()) {
      expect(engine.calls.filter((c) => c.op === 'inspectImage' && c.args[0] === img.id)).toHaveLength(1);
      expect(engine.calls.filter((c) => c.op === 'saveImage' && c.args[0] === img.id)).toHaveLength(1);
    }
    // No `docker export`: the export converter's container is never made.
    expect(
      engine.calls.filter(
        (c) => c.op === 'createContainer' && JSON.stringify(c.args[0]).includes('/sifkit-export-only'),
      ),
    ).toHaveLength(0);

    expect(def.stages.map((s) => s.stage)).toEqual([
      'render',
      'build',
      'archive',
      'convert',
      'test',
      'stage',
      'promote',
    ]);
    for (const version of VERSIONS)
      await expectReleased(byVersion(ctx, version), engine.built.get(version)!, path.join(dir, 'root'));
    expect(ctx.variants.map((v) => v.skipped)).toEqual([{}, {}]);
    expect(engine.buildCount()).toBe(2);
    // One connection for the run, through its effects.
    expect(connects).toEqual([undefined]);
    // Every check's and export's container was removed.
    expect(engine.containers.size).toBe(0);
  });

  it('resumes: a second run on a fresh context skips every stage after build, with why, and builds nothing', async () => {
    const engine = new ReleaseEngine();
    await release(engine);
    const first = new Map(engine.built);

    const again = await release(engine);

    expect(engine.buildCount()).toBe(2);
    for (const version of VERSIONS) {
      const v = byVersion(again, version);
      const img = first.get(version)!;
      // Build has no skip of its own: it finds the image of this definition and reuses it.
      expect(v.results.build).toMatchObject({ reused: true, imageId: img.id });
      expect(v.skipped).toEqual({
        archive: `${nameOf(v).replace(/\.sif$/, '.tar')} is staged in the tree`,
        convert: `${nameOf(v)} is staged in the tree for this image`,
        test: expect.stringMatching(/^passed on \d{4}-\d\d-\d\d \d\d:\d\d \(local\)$/),
        stage: 'staged, checksum matching',
        promote: 'already in easybuild-sif-images and linked',
      });
      expect(v.results).toMatchObject({
        archive: { path: path.join(treeAt(path.join(dir, 'root')).tested, nameOf(v).replace(/\.sif$/, '.tar')) },
        convert: {
          out: path.join(treeAt(path.join(dir, 'root')).tested, nameOf(v)),
          source: `docker-daemon:${img.id}`,
        },
        test: { passed: true, image: nameOf(v) },
        stage: { name: nameOf(v), already: true },
      });
      expect(v.error).toBeUndefined();
    }
  });

  it('a copy left in --out (a run stopped after staging, before removing it) is staged again and removed', async () => {
    const engine = new ReleaseEngine();
    const first = await release(engine);
    const tested = treeAt(path.join(dir, 'root')).tested;
    const v0 = byVersion(first, VERSIONS[0]);
    const name = nameOf(v0);
    const tar = name.replace(/\.sif$/, '.tar');
    const before = await readLedger(treeAt(path.join(dir, 'root')), name);
    const inode = (await fs.stat(path.join(tested, name))).ino;
    // The state an interruption between the two leaves: the same bytes in the tree and in --out.
    for (const f of [name, tar]) await fs.copyFile(path.join(tested, f), path.join(dir, 'out', f));

    const again = await release(engine);
    const v = byVersion(again, VERSIONS[0]);
    expect(v.error).toBeUndefined();
    expect(v.skipped.stage).toBeUndefined();
    expect(v.results.stage).toMatchObject({ name, already: true });
    for (const f of [name, tar]) expect(await exists(path.join(dir, 'out', f))).toBe(false);
    // The tree's copy is untouched: same checksum, same inode (hard-linked from easybuild-sif-images).
    expect((await readLedger(treeAt(path.join(dir, 'root')), name))?.sha256).toBe(before?.sha256);
    expect((await fs.stat(path.join(tested, name))).ino).toBe(inode);
    // The other variant had nothing left in --out: every stage skipped.
    expect(byVersion(again, VERSIONS[1]).skipped.stage).toBe('staged, checksum matching');
  });

  it('leaves a variant whose build fails FAILED at build, with the step named, while the other completes', async () => {
    const engine = new ReleaseEngine();
    engine.breakBuild = '2.0';

    const ctx = await release(engine);

    const bad = byVersion(ctx, '2.0');
    expect(bad.failedStage).toBe('build');
    expect(bad.error).toMatchObject({
      code: 'build-failed',
      message: `${bad.rendered!.names.stem}: step 2/2 (RUN echo "hello from unitrel 2.0" > /etc/greeting) failed: The command '/bin/sh -c echo "hello from unitrel 2.0" > /etc/greeting' returned a non-zero code: 1`,
    });
    expect(bad.results).toEqual({ engine: 'default' });
    await expectReleased(byVersion(ctx, '1.0'), engine.built.get('1.0')!, path.join(dir, 'root'));
    // Only the good variant reached the tree.
    const tree = treeAt(path.join(dir, 'root'));
    expect(await fs.readdir(tree.tested)).not.toContainEqual(expect.stringContaining(bad.rendered!.names.stem));
    expect(engine.ops()).not.toContain('removeImage');
    expect(engine.containers.size).toBe(0);
  });

  it('fails the test stage on a failing check and stages nothing for that variant', async () => {
    const engine = new ReleaseEngine();
    engine.badOutput = '2.0';

    const ctx = await release(engine);

    const bad = byVersion(ctx, '2.0');
    expect(bad.failedStage).toBe('test');
    expect(bad.error).toMatchObject({
      code: 'tests-failed',
      message: '1 check(s) failed: greeting (output lacks "hello from unitrel")',
    });
    expect(bad.results.test).toMatchObject({ passed: false, image: nameOf(bad) });
    expect(bad.results.stage).toBeUndefined();
    expect(bad.results.promote).toBeUndefined();
    const tree = treeAt(path.join(dir, 'root'));
    expect(await exists(path.join(tree.tested, nameOf(bad)))).toBe(false);
    expect(await readLedger(tree, nameOf(bad))).toBeUndefined();
    expect(await fs.readdir(tree.sifImages)).toEqual([linkName(byVersion(ctx, '1.0').rendered!.names.stem)]);
    await expectReleased(byVersion(ctx, '1.0'), engine.built.get('1.0')!, path.join(dir, 'root'));
  });

  it('with --jobs 2 and one build slot, never runs two builds at once', async () => {
    const engine = new ReleaseEngine();
    const gate = new Gate();
    engine.gate = gate;
    const { ctx } = contextFor(engine, { slots: { build: 1 } });
    // Watches the run's own build slots: who asked for one, and who holds one.
    const slots = ctx.run.slots;
    const builds = { asked: 0, holding: 0, most: 0 };
    ctx.run.slots = {
      use<T>(kind: 'build' | 'convert', fn: () => Promise<T>): Promise<T> {
        if (kind !== 'build') return slots.use(kind, fn);
        builds.asked++;
        return slots.use(kind, async () => {
          builds.most = Math.max(builds.most, ++builds.holding);
          try {
            return await fn();
          } finally {
            builds.holding--;
          }
        });
      },
    };

    const done = runPipeline(def, ctx, STAGES, { renderer: 'silent', jobs: 2 });
    // One build is held at the engine (the second variant waits for its slot, or for the
    // first to build the prefix they share: the build plan's order).
    await until(() => gate.queued === 1, 5);
    expect(builds.holding).toBe(1);
    gate.openOne();
    await until(() => builds.asked === 2 && gate.queued === 1, 5);
    expect(builds.holding).toBe(1);
    gate.openOne();
    await done;

    expect([builds.most, gate.max]).toEqual([1, 1]);
    expect(engine.buildCount()).toBe(2);
    for (const version of VERSIONS)
      await expectReleased(byVersion(ctx, version), engine.built.get(version)!, path.join(dir, 'root'));
  });

  it("hands the run's convert flags to the convert stage (--compression zstd, --mksquashfs-mem)", async () => {
    const engine = new ReleaseEngine();
    const { ctx } = contextFor(engine, { convert: { compression: 'zstd', mem: '64M' } });
    await runPipeline(def, ctx, STAGES, { renderer: 'silent', jobs: 1 });
    for (const v of ctx.variants) {
      expect(v.error).toBeUndefined();
      expect(v.results.convert?.compression).toBe('zstd');
      expect((await inspectSif(v.results.convert!.out)).partition?.compression).toBe('zstd');
    }
  });
});
