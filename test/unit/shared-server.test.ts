/**
 * One file server per served digest, shared by a run's builds
 * (fileserver/shared.ts), and the plan keying the builds' runtime
 * arguments by the values the builds pass (pipeline/build-order.ts). The
 * servers are real, on loopback; the engine is the in-memory one.
 */
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildVariant } from '../../src/engine/build';
import { InterruptedError } from '../../src/errors';
import { derivePort, digestOfServed, servedFilesDigest } from '../../src/fileserver/served';
import { newFileServers } from '../../src/fileserver/shared';
import { planRun, runServed, variantBuildArgs, variantSteps } from '../../src/pipeline/build-order';
import { newContext } from '../../src/pipeline/run-state';
import { buildStage, renderStage } from '../../src/pipeline/stages';
import { loadRecipe } from '../../src/recipe/load';
import { resolveValues } from '../../src/recipe/params';
import { LABEL } from '../../src/recipe/render';
import { readRecipeInputs, renderRecipe } from '../../src/recipe/render-recipe';
import type { Recipe } from '../../src/recipe/types';
import { FakeEngine, fakeImage } from '../support/fake-engine';
import { until } from '../support/poll';

let dir: string;
let served: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-unit-shared-'));
  served = path.join(dir, 'served');
  await fs.mkdir(served);
  await fs.writeFile(path.join(served, 'cpe.tar'), 'licensed bytes of the shared-server test\n');
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A recipe whose variants fetch from the file server, then differ by `v`; its served directory is `served`. */
async function servedRecipe(): Promise<Recipe> {
  const rdir = path.join(dir, 'defs', 'shared');
  await fs.mkdir(rdir, { recursive: true });
  await fs.writeFile(
    path.join(rdir, 'recipe.yaml'),
    [
      'name: shared',
      'naming: { prefix: unittest, app: shared, version: v, parts: [[v, v]] }',
      'fragments: [shared/main.docker]',
      'runtime_args: [SERVER_PORT, SERVED_DIGEST]',
      `server_files: ${served}`,
      'served: [{ file: cpe.tar, role: licensed }]',
      "parameters: { v: { type: version, default: '1.0', values: ['1.0', '2.0'] } }",
      '',
    ].join('\n'),
  );
  await fs.writeFile(
    path.join(rdir, 'main.docker'),
    [
      'FROM busybox',
      'ARG SERVER_PORT',
      'ARG SERVED_DIGEST',
      'RUN wget -q -O /cpe.tar "http://127.0.0.1:${SERVER_PORT}/cpe.tar" && rm /cpe.tar',
      'RUN echo "v {{ v }}" > /v',
      '',
    ].join('\n'),
  );
  return loadRecipe(rdir, path.join(dir, 'defs'));
}

function get(port: number, rawPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time (node's global agent keeps them alive): a stopped server must refuse, not reset.
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: rawPath, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the plan keys the runtime arguments by what the builds pass', () => {
  it("each variant's build passes exactly the arguments the plan keyed its steps by", async () => {
    const recipe = await servedRecipe();
    const engine = new FakeEngine();
    engine.addImage(await fakeImage({ files: [{ name: 'bin/sh', content: 'sh\n' }], tags: ['busybox:latest'] }));
    const passed: Array<Record<string, string>> = [];
    engine.buildFor = async (dockerfile) => {
      const v = /echo "v ([\d.]+)"/.exec(dockerfile)![1];
      const image = await fakeImage({ files: [{ name: 'v', content: `v ${v}\n` }] });
      return { lines: [{ stream: 'Step 1/5 : FROM busybox\n' }, { aux: { ID: image.id } }], image };
    };
    const ctx = newContext({
      recipe,
      values: ['1.0', '2.0'].map((v) => resolveValues(recipe, { v })),
      signal: new AbortController().signal,
      options: { logDir: path.join(dir, 'logs') },
      date: '20261201',
      effects: { connectEngine: async () => engine },
    });
    // The builds' scan verdicts go to this test's directory.
    const saved = process.env.SIFKIT_STATE_DIR;
    process.env.SIFKIT_STATE_DIR = path.join(dir, 'state');
    try {
      // The build stage itself (not the runner and its renderer): both variants at once.
      const report = { progress: () => undefined, title: () => undefined };
      await Promise.all(
        ctx.variants.map(async (v) => {
          await renderStage.run(ctx, v, report, {});
          await buildStage.run(ctx, v, report, {});
        }),
      );
    } finally {
      if (saved === undefined) delete process.env.SIFKIT_STATE_DIR;
      else process.env.SIFKIT_STATE_DIR = saved;
    }
    for (const v of ctx.variants) expect(v.error?.message).toBeUndefined();
    for (const c of engine.calls.filter((x) => x.op === 'build'))
      passed.push((c.args[0] as { buildargs: Record<string, string> }).buildargs);

    const digest = await servedFilesDigest(served);
    const run = await runServed(ctx);
    expect(run).toEqual({ dir: served, digest });
    const planned = ctx.variants.map((v) => variantBuildArgs(recipe, v.rendered!, run));
    expect(passed).toHaveLength(2);
    for (const args of passed) expect(planned).toContainEqual(args);
    expect(planned[0]).toEqual({ SERVER_PORT: String(derivePort(digest)), SERVED_DIGEST: digest });
    // One value for the whole run: the fetching step is one step of the matrix, as the engine's cache sees it.
    const inputs = await readRecipeInputs(recipe);
    const [a, b] = ctx.variants.map((v, i) => variantSteps(v.rendered!, inputs.files, planned[i]));
    const fetch = a.findIndex((s) => s.text.startsWith('RUN wget'));
    expect(a[fetch].key).toBe(b[fetch].key);
    expect(a[fetch + 1].key).not.toBe(b[fetch + 1].key);
    const plan = await planRun(ctx);
    expect(plan.served).toEqual({ digest, port: derivePort(digest) });
    expect(plan.distinctHeavy).toBe(3);
  });

  it('without a served directory the plan says what it assumed, and keys every declaring variant alike', async () => {
    const recipe = { ...(await servedRecipe()), serverFiles: undefined };
    const ctx = newContext({
      recipe,
      values: ['1.0', '2.0'].map((v) => resolveValues(recipe, { v })),
      signal: new AbortController().signal,
      date: '20261201',
      effects: { connectEngine: async () => new FakeEngine() },
    });
    const plan = await planRun(ctx);
    expect(plan.served?.assumed).toMatch(/^no served directory .*the 2 variants declaring served files are keyed/);
    expect(plan.distinctHeavy).toBe(3);
    const rendered = await renderRecipe(recipe, {
      values: ctx.variants[0].values,
      date: ctx.date,
      inputs: await readRecipeInputs(recipe),
    });
    // Sources only (no served files declared, no directory): the digest of no files, as a build passes it.
    expect(variantBuildArgs({ ...recipe, served: [] }, { ...rendered, served: [], sources: [] }, {})).toEqual({});
    expect(variantBuildArgs(recipe, { ...rendered, served: [], sources: [{} as never] }, {}).SERVED_DIGEST).toBe(
      digestOfServed([]),
    );
  });
});

describe('one file server per served digest, shared by the builds of a run', () => {
  it('two leases of the same files share one server and port; each source is served while a lease declares it', async () => {
    const servers = newFileServers();
    const digest = await servedFilesDigest(served);
    const src = (name: string) => ({
      servedPath: `sources/sha256/${name}`,
      file: path.join(dir, name),
      role: 'source' as const,
    });
    await fs.writeFile(path.join(dir, 'a'), 'a');
    await fs.writeFile(path.join(dir, 'b'), 'b');
    const req = { dir: served, digest, preferredPort: 0 };
    const logA = path.join(dir, 'a.access.log');
    const logB = path.join(dir, 'b.access.log');
    const [a, b] = await Promise.all([
      servers.lease({ ...req, extra: [src('a')], logFile: logA, who: 'variant-a' }),
      servers.lease({ ...req, extra: [src('b')], logFile: logB, who: 'variant-b' }),
    ]);
    expect(b.port).toBe(a.port);
    expect([a.portFallback, b.portFallback, servers.open]).toEqual([false, false, 1]);
    expect(await get(a.port, '/sources/sha256/a')).toBe(200);
    expect(await get(a.port, '/sources/sha256/b')).toBe(200);
    expect(await get(a.port, '/cpe.tar')).toBe(200);

    await a.release();
    // a's source leaves with it; b's stays, and so does the server.
    expect(await get(b.port, '/sources/sha256/a')).toBe(404);
    expect(await get(b.port, '/sources/sha256/b')).toBe(200);
    await b.release();
    expect(servers.open).toBe(0);
    await expect(get(b.port, '/cpe.tar')).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    // Each log has every request made while its build held the server, and says who else was served then.
    const [la, lb] = await Promise.all([fs.readFile(logA, 'utf8'), fs.readFile(logB, 'utf8')]);
    const second = la.includes('also building with it now') ? la : lb;
    expect(second).toMatch(/also building with it now: variant-[ab] \(a request here may be theirs\)/);
    expect(la).toMatch(/GET "\/sources\/sha256\/b" 200/);
    expect(lb).toMatch(/variant-a ended/);
    expect(lb).toMatch(/GET "\/sources\/sha256\/a" 404/);
    expect(la).not.toMatch(/sources\/sha256\/a" 404/);
  });

  it('never shares a server across allowed uids or directories: the second takes another port and says so', async () => {
    const servers = newFileServers();
    const digest = await servedFilesDigest(served);
    const a = await servers.lease({
      dir: served,
      digest,
      preferredPort: 0,
      extra: [],
      logFile: path.join(dir, 'a.log'),
      who: 'a',
    });
    const b = await servers.lease({
      dir: served,
      digest,
      preferredPort: a.port,
      allowUids: [0, 65534],
      extra: [],
      logFile: path.join(dir, 'b.log'),
      who: 'b',
    });
    try {
      expect(b.port).not.toBe(a.port);
      expect(b.portFallback).toBe(true);
      expect(servers.open).toBe(2);
    } finally {
      await a.release();
      await b.release();
    }
    expect(servers.open).toBe(0);
  });

  it('a build interrupted mid-build stops the server it started; a rerun serves on the same port', async () => {
    const recipe = await servedRecipe();
    const inputs = await readRecipeInputs(recipe);
    const rendered = await renderRecipe(recipe, { values: resolveValues(recipe, {}), date: '20261201', inputs });
    const servers = newFileServers();
    const engine = new FakeEngine();
    engine.builds.push({ lines: [{ stream: 'Step 1/5 : FROM busybox\n' }], hang: true });
    const ac = new AbortController();
    const ports: string[] = [];
    const options = {
      recipe,
      rendered,
      logDir: path.join(dir, 'logs'),
      verdictDir: path.join(dir, 'verdicts'),
      fileServers: servers,
    };
    const p = buildVariant(engine, { ...options, signal: ac.signal, onProgress: () => servers.open && ac.abort() });
    await expect(p).rejects.toThrow(InterruptedError);
    ports.push(
      (engine.calls.find((c) => c.op === 'build')!.args[0] as { buildargs: Record<string, string> }).buildargs
        .SERVER_PORT,
    );
    expect(servers.open).toBe(0);
    await expect(get(Number(ports[0]), '/cpe.tar')).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const img = await fakeImage({
      files: [{ name: 'v', content: 'v 1.0\n' }],
      labels: { [LABEL.definitionHash]: rendered.definitionHash, [LABEL.stem]: rendered.names.stem },
    });
    engine.builds.push({ lines: [{ aux: { ID: img.id } }], image: img });
    const r = await buildVariant(engine, { ...options, signal: new AbortController().signal });
    expect(r.reused).toBe(false);
    const calls = engine.calls.filter((c) => c.op === 'build');
    ports.push((calls[1].args[0] as { buildargs: Record<string, string> }).buildargs.SERVER_PORT);
    expect(ports[1]).toBe(ports[0]);
    await until(() => servers.open === 0);
  });
});
