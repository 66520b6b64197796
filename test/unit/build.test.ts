/**
 * buildVariant against the in-memory engine: reuse by definition hash,
 * tagging only after the leak scan, failures read from the stream, leaks,
 * abort. The scan itself is the real one, over the fake's `docker save`.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { buildVariant } from '../../src/engine/build';
import { readVerdict, recordVerdict, SCANNER_VERSION } from '../../src/engine/verdict';
import { InputError, InterruptedError, OperationError, RefusedError } from '../../src/errors';
import { loadRecipe, readFragments } from '../../src/recipe/load';
import { resolveValues } from '../../src/recipe/params';
import { LABEL, renderVariant, type RenderedVariant } from '../../src/recipe/render';
import { readRecipeInputs, renderRecipe } from '../../src/recipe/render-recipe';
import type { Recipe } from '../../src/recipe/types';
import { FakeEngine, fakeImage, type FakeImage } from '../support/fake-engine';
import { TEST_PROVENANCE } from '../support/recipes';

let dir: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-unit-build-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A one-fragment recipe in a fresh defs root; `serverArgs` makes it take the server's arguments, `served` declare a served file. */
async function recipeFor(
  name: string,
  opts: { serverArgs?: boolean; served?: boolean } = {},
): Promise<{ recipe: Recipe; rendered: RenderedVariant }> {
  const rdir = path.join(dir, 'defs', name);
  await fs.mkdir(rdir, { recursive: true });
  await fs.writeFile(
    path.join(rdir, 'recipe.yaml'),
    [
      `name: ${name}`,
      `naming: { prefix: unittest, app: ${name}, version: v, parts: [[v, v]] }`,
      `fragments: [${name}/main.docker]`,
      ...(opts.serverArgs ? ['runtime_args: [SERVER_PORT, SERVED_DIGEST]'] : []),
      ...(opts.served ? ['served: [{ file: cpe.tar, role: licensed }]'] : []),
      "parameters: { v: { type: version, default: '1.0' } }",
      '',
    ].join('\n'),
  );
  await fs.writeFile(path.join(rdir, 'main.docker'), 'FROM busybox\nRUN echo hello > /hello\n');
  const recipe = await loadRecipe(rdir, path.join(dir, 'defs'));
  const rendered = renderVariant({
    recipe,
    values: resolveValues(recipe, {}),
    fragments: await readFragments(recipe),
    files: {},
    provenance: TEST_PROVENANCE,
    date: '20260101',
  });
  return { recipe, rendered };
}

const CLEAN = [{ name: 'hello', content: 'hello\n' }];

function stepLines(image: FakeImage | undefined): object[] {
  return [
    { stream: 'Step 1/2 : FROM busybox\n' },
    { stream: ' ---> 0123456789ab\n' },
    { stream: 'Step 2/2 : RUN echo hello > /hello\n' },
    { stream: ` ---> Running in ${'c'.repeat(64)}\n` },
    ...(image ? [{ aux: { ID: image.id } }, { stream: `Successfully built ${image.id.slice(7, 19)}\n` }] : []),
  ];
}

function options(recipe: Recipe, rendered: RenderedVariant, extra: Partial<Parameters<typeof buildVariant>[1]> = {}) {
  return {
    recipe,
    rendered,
    logDir: path.join(dir, 'logs'),
    verdictDir: path.join(dir, 'verdicts'),
    signal: new AbortController().signal,
    ...extra,
  };
}

describe('buildVariant over the in-memory engine', () => {
  it('reuses an image of the same definition whose scan verdict holds, without scanning again', async () => {
    const { recipe, rendered } = await recipeFor('reuse');
    const engine = new FakeEngine();
    // The image its FROM names, which the build record resolves for provenance.
    const base = await fakeImage({ files: [{ name: 'bin/sh', content: 'sh\n' }], tags: ['busybox:latest'] });
    engine.addImage(base);
    const img = await fakeImage({
      files: CLEAN,
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
    });
    engine.addImage(img);
    await recordVerdict(path.join(dir, 'verdicts'), {
      imageId: img.id,
      passed: true,
      scanner: SCANNER_VERSION,
      scannedAt: '2026-01-01T00:00:00Z',
      layers: 1,
      files: 1,
      bytes: 1,
    });

    const r = await buildVariant(engine, options(recipe, rendered));

    expect(r).toMatchObject({ reused: true, imageId: img.id, tag: rendered.names.tag, size: img.size });
    expect(r.leakScan).toBeUndefined();
    // Then the facts provenance records, asked once, here: what FROM busybox resolved to, the image's own inspect.
    expect(engine.ops()).toEqual(['listImages', 'tagImage', 'tagImage', 'inspectImage', 'inspectImage']);
    expect(engine.calls.slice(3).map((c) => c.args[0])).toEqual(['busybox', img.id]);
    expect(r.baseImages).toEqual([{ ref: 'busybox', imageId: base.id }]);
    expect(r.engine).toEqual({ version: '0.0.0-fake', apiVersion: '1.41' });
    expect(engine.calls[0].args).toEqual([`${LABEL.definitionHash}=${rendered.definitionHash}`]);
    // The variant's tag, and the image's own, which no later build of the variant moves.
    expect(img.tags).toEqual([rendered.names.tag, `${rendered.names.tag}-dockerhash-${r.dockerhash}`]);
    expect(r.imageTag).toBe(`${rendered.names.tag}-dockerhash-${r.dockerhash}`);
  });

  it('does not reuse an image of the same definition built under another name (its labels name the other stem)', async () => {
    const { recipe, rendered } = await recipeFor('reuse-other-stem');
    const engine = new FakeEngine();
    const other = await fakeImage({
      files: CLEAN,
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: `other-${rendered.names.stem}` },
    });
    engine.addImage(other);
    const img = await fakeImage({
      files: [...CLEAN, { name: 'own', content: 'x' }],
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
    });
    engine.builds.push({ lines: stepLines(img), image: img });

    const r = await buildVariant(engine, options(recipe, rendered));

    expect(r).toMatchObject({ reused: false, imageId: img.id });
    expect(other.tags).toEqual([]);
  });

  it('scans a reused image that has no verdict before tagging it, and records the verdict', async () => {
    const { recipe, rendered } = await recipeFor('reuse-unscanned');
    const engine = new FakeEngine();
    const img = await fakeImage({
      files: CLEAN,
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
    });
    engine.addImage(img);

    const r = await buildVariant(engine, options(recipe, rendered));

    expect(r.reused).toBe(true);
    expect(r.leakScan).toMatchObject({ layers: 1, files: 1 });
    expect(engine.ops()).toEqual(['listImages', 'saveImage', 'tagImage', 'tagImage', 'inspectImage', 'inspectImage']);
    expect(await readVerdict(path.join(dir, 'verdicts'), img.id)).toMatchObject({
      passed: true,
      scanner: SCANNER_VERSION,
    });
  });

  it('builds afresh untagged, with the host network and no cache on rebuild, and tags only after the scan passed', async () => {
    const { recipe, rendered } = await recipeFor('fresh');
    const engine = new FakeEngine();
    const old = await fakeImage({
      files: CLEAN,
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
      created: '2020-01-01T00:00:00Z',
    });
    engine.addImage(old);
    const img = await fakeImage({
      files: [...CLEAN, { name: 'new', content: 'x' }],
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
    });
    engine.builds.push({ lines: stepLines(img), image: img });
    const progress: string[] = [];

    const r = await buildVariant(
      engine,
      options(recipe, rendered, {
        rebuild: true,
        extraLabels: { 'io.sifkit.test': 'x' },
        onProgress: (l) => progress.push(l),
      }),
    );

    expect(r).toMatchObject({
      reused: false,
      imageId: img.id,
      tag: rendered.names.tag,
      definitionHash: rendered.definitionHash,
    });
    // The image's inspect after the build serves the facts too: only FROM busybox is asked after the tags.
    expect(engine.ops()).toEqual(['build', 'inspectImage', 'saveImage', 'tagImage', 'tagImage', 'inspectImage']);
    expect(engine.calls[5].args[0]).toBe('busybox');
    expect(r.baseImages).toEqual([{ ref: 'busybox', imageId: undefined }]);
    expect(engine.calls[0].args[0]).toEqual({
      buildargs: {},
      labels: { 'io.sifkit.test': 'x' },
      networkMode: 'host',
      noCache: true,
    });
    expect(engine.calls[3].args).toEqual([img.id, `${rendered.names.tag}`]);
    expect(engine.calls[4].args).toEqual([img.id, `${rendered.names.tag}-dockerhash-${r.dockerhash}`]);
    expect(progress).toEqual(
      expect.arrayContaining([
        'step 2/2: RUN echo hello > /hello',
        'scanning layers, config and history for served files',
      ]),
    );
    expect(await readVerdict(path.join(dir, 'verdicts'), img.id)).toMatchObject({ passed: true });
    expect(await fs.readFile(r.logPath!, 'utf8')).toContain('Step 2/2');
    expect(engine.containers.size).toBe(0);
  });

  it("reports a failed step from the stream's error line, tags nothing and removes the step containers", async () => {
    const { recipe, rendered } = await recipeFor('failing');
    const engine = new FakeEngine();
    const message = "The command '/bin/sh -c echo hello > /hello' returned a non-zero code: 3";
    engine.builds.push({
      lines: [...stepLines(undefined), { stream: 'sh: oops\n' }, { errorDetail: { code: 3, message }, error: message }],
    });

    const p = buildVariant(engine, options(recipe, rendered));

    await expect(p).rejects.toThrow(OperationError);
    await expect(p).rejects.toMatchObject({
      code: 'build-failed',
      message: `${rendered.names.stem}: step 2/2 (RUN echo hello > /hello) failed: ${message}`,
    });
    await expect(p).rejects.toMatchObject({ hint: expect.stringContaining('sh: oops') });
    expect(engine.ops()).not.toContain('tagImage');
    expect(engine.ops()).not.toContain('saveImage');
    expect(engine.calls.filter((c) => c.op === 'removeContainer').map((c) => c.args[0])).toEqual(['c'.repeat(64)]);
  });

  it('fails when the engine names no image, even though the stream ended', async () => {
    const { recipe, rendered } = await recipeFor('no-image');
    const engine = new FakeEngine();
    engine.builds.push({ lines: stepLines(undefined) });
    await expect(buildVariant(engine, options(recipe, rendered))).rejects.toMatchObject({
      code: 'build-failed',
      message: expect.stringContaining('the engine reported no image'),
    });
  });

  it('refuses an image with a licensed path in a layer, records the failed verdict and removes the image', async () => {
    const { recipe, rendered } = await recipeFor('leaky');
    const engine = new FakeEngine();
    const img = await fakeImage({
      files: [...CLEAN, { name: 'opt/cray/pe/VERSION', content: 'licensed\n' }],
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
    });
    engine.builds.push({ lines: stepLines(img), image: img });

    const p = buildVariant(engine, options(recipe, rendered));

    await expect(p).rejects.toThrow(RefusedError);
    await expect(p).rejects.toMatchObject({
      code: 'leak',
      message: expect.stringContaining(
        'licensed file /opt/cray/pe/VERSION is in layer l0/layer.tar (licensed path); the image was removed',
      ),
    });
    expect(engine.images.has(img.id)).toBe(false);
    expect(engine.ops()).not.toContain('tagImage');
    expect(engine.ops()).toContain('removeImage');
    expect(await readVerdict(path.join(dir, 'verdicts'), img.id)).toMatchObject({ passed: false });
  });

  it("serves the licensed files for the build's duration and refuses an image with their content in a layer", async () => {
    const { recipe, rendered } = await recipeFor('served', { serverArgs: true });
    const served = path.join(dir, 'served');
    await fs.mkdir(served);
    await fs.writeFile(path.join(served, 'token'), 'licensed token for the unit test\n');
    const engine = new FakeEngine();
    const img = await fakeImage({
      files: [...CLEAN, { name: 'usr/share/copied', content: 'licensed token for the unit test\n' }],
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
    });
    engine.builds.push({ lines: stepLines(img), image: img });

    const p = buildVariant(engine, options(recipe, rendered, { serverFiles: served }));

    await expect(p).rejects.toMatchObject({
      code: 'leak',
      message: expect.stringContaining('licensed file /usr/share/copied is in layer l0/layer.tar (served content)'),
    });
    const args = (engine.calls[1].args[0] as { buildargs: Record<string, string> }).buildargs;
    expect(engine.calls[1].op).toBe('build');
    expect(Object.keys(args).sort()).toEqual(['SERVED_DIGEST', 'SERVER_PORT']);
    expect(Number(args.SERVER_PORT)).toBeGreaterThan(0);
    expect(engine.images.has(img.id)).toBe(false);
  });

  it('stops on abort with InterruptedError and leaves no container of the build', async () => {
    const { recipe, rendered } = await recipeFor('aborted');
    const engine = new FakeEngine();
    const running = 'd'.repeat(64);
    engine.builds.push({
      lines: [
        { stream: 'Step 1/2 : RUN sleep 1\n' },
        { stream: ` ---> Running in ${running}\n` },
        { stream: 'Step 2/2 : RUN sleep 2\n' },
      ],
      hang: true,
    });
    const ac = new AbortController();

    const p = buildVariant(
      engine,
      options(recipe, rendered, { signal: ac.signal, onProgress: (l) => l.startsWith('step 2/2') && ac.abort() }),
    );

    await expect(p).rejects.toThrow(InterruptedError);
    // The engine left its step container running: the build removed it.
    expect(engine.containers.size).toBe(0);
    expect(engine.calls.filter((c) => c.op === 'removeContainer').map((c) => c.args[0])).toEqual([running]);
    expect(engine.ops()).not.toContain('tagImage');
    expect(engine.images.size).toBe(0);
  });

  it('asks for the served files a variant declares, naming them, before touching the engine', async () => {
    const { recipe, rendered } = await recipeFor('needs-server', { serverArgs: true, served: true });
    const engine = new FakeEngine();
    const p = buildVariant(engine, options(recipe, rendered));
    await expect(p).rejects.toThrow(InputError);
    await expect(p).rejects.toMatchObject({
      code: 'no-server-files',
      message: `${rendered.names.stem} declares served files cpe.tar (licensed) and no directory holds them: give --server-files DIR`,
    });
    expect(engine.calls).toEqual([]);
  });

  it('streams the build context the render listed and hashed, and lists it no second time', async () => {
    const { recipe } = await recipeFor('context');
    const ctxDir = path.join(dir, 'context');
    await fs.mkdir(path.join(ctxDir, 'etc'), { recursive: true });
    await fs.writeFile(path.join(ctxDir, 'etc', 'greeting'), 'hello\n');
    await fs.writeFile(path.join(ctxDir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    const inputs = await readRecipeInputs({ ...recipe, context: ctxDir });
    const rendered = await renderRecipe({ ...recipe, context: ctxDir }, { inputs, date: '20260101' });
    // Written after the render: a second listing would send it, unhashed.
    await fs.writeFile(path.join(ctxDir, 'late'), 'not hashed\n');
    const engine = new FakeEngine();
    const img = await fakeImage({
      files: CLEAN,
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
    });
    engine.builds.push({ lines: stepLines(img), image: img });
    const sent: string[] = [];
    const build = engine.build.bind(engine);
    engine.build = async (req) => {
      const members = await tarMembers(req.context);
      sent.push(...members.map((m) => m.header.name));
      return build({ ...req, context: Readable.from(await repack(members)) });
    };

    await buildVariant(engine, options({ ...recipe, context: ctxDir }, rendered));

    expect(Object.keys(inputs.files).sort()).toEqual(['etc/greeting', 'run.sh']);
    expect(sent).toEqual(['Dockerfile', 'etc', 'etc/greeting', 'run.sh']);
    expect(rendered.context).toBe(inputs.context);
  });

  it('refuses, as a bug, context digests rendered without the listing they were taken over', async () => {
    const { recipe } = await recipeFor('unlisted');
    expect(() =>
      renderVariant({
        recipe,
        values: resolveValues(recipe, {}),
        fragments: [],
        files: { 'etc/greeting': `-:${'0'.repeat(64)}` },
        provenance: TEST_PROVENANCE,
        date: '20260101',
      }),
    ).toThrow('context digest for etc/greeting without its listed entry');
  });
});

interface Member {
  header: tar.Header;
  body: Buffer;
}

async function tarMembers(stream: NodeJS.ReadableStream): Promise<Member[]> {
  const out: Member[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (c) => void chunks.push(c as Buffer));
    body.on('end', () => {
      out.push({ header, body: Buffer.concat(chunks) });
      next();
    });
  });
  await pipeline(stream, extract);
  return out;
}

async function repack(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const m of members) pack.entry(m.header, m.body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
