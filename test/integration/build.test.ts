import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildVariant } from '../../src/engine/build';
import { readVerdict } from '../../src/engine/verdict';
import { InterruptedError } from '../../src/errors';
import { runCli } from '../support/cli';
import { allContainerIds, docker, engine, removeTestImages, TEST_LABEL, runId } from '../support/engine';
import { fixtureRecipe } from '../support/fixtures';
import { renderFor } from '../support/recipes';
import { loadRecipe } from '../../src/recipe/load';
import { until } from '../support/poll';
import { defOf } from '../support/pipeline';
import { derivePort, servedFilesDigest } from '../../src/fileserver/served';
import { planRun, runServed, variantBuildArgs, variantSteps } from '../../src/pipeline/build-order';
import { STAGES } from '../../src/pipeline/registry';
import { newContext } from '../../src/pipeline/run-state';
import { runPipeline } from '../../src/pipeline/runner';
import { resolveValues } from '../../src/recipe/params';
import { renderRecipe } from '../../src/recipe/render-recipe';

jest.setTimeout(600_000);

// Verdicts of this run apart from the user's (the CLI children inherit it).
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'sifkit-state-'));
process.env.SIFKIT_STATE_DIR = stateDir;
const verdictDir = path.join(stateDir, 'scan-verdicts');

async function untaggedTestImages(recipe?: string): Promise<string[]> {
  const label = [`${TEST_LABEL}=${runId}`, ...(recipe ? [`io.sifkit.recipe=${recipe}`] : [])];
  const images = await docker.listImages({ filters: JSON.stringify({ label, dangling: ['true'] }) });
  return images.map((i) => i.Id);
}

async function imageExists(tag: string): Promise<boolean> {
  return docker
    .getImage(tag)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

// Everything the fixtures built carries this run's test label.
afterAll(() => removeTestImages());

describe('sifkit build against the real engine', () => {
  it('builds a clean recipe, scans every layer, and reuses it the second time', async () => {
    const fx = await fixtureRecipe(
      'clean',
      'RUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; tar -xf /cpe.tar; rm /cpe.tar; cat /opt/cray/pe/VERSION | wc -c > /built; rm -rf /opt/cray',
    );
    const first = await runCli(['build', fx.dir, '--json', '--log-dir', `${fx.dir}/logs`]);
    expect(first.code).toBe(0);
    const doc = JSON.parse(first.stdout);
    const img = doc.images[0];
    expect(img).toMatchObject({ tag: fx.tag, reused: false });
    expect(img.dockerhash).toBe(img.imageId.replace('sha256:', '').slice(0, 12));
    expect(img.definitionHash).toMatch(/^[0-9a-f]{64}$/);
    expect(img.leakScan.layers).toBeGreaterThanOrEqual(2);
    expect(img.size).toBeGreaterThan(0);
    // The build log and the file server's access log are kept.
    expect(await fs.readFile(img.logPath, 'utf8')).toContain('Step 8/9');
    expect(await fs.readFile(img.accessLogPath, 'utf8')).toMatch(/uid=0 GET "\/cpe.tar" 200/);
    // The verdict is bound to the image ID; the history names only stable, non-secret arguments.
    expect(await readVerdict(verdictDir, img.imageId)).toMatchObject({ imageId: img.imageId, passed: true });
    const history = (await docker.getImage(img.imageId).history()) as { CreatedBy: string }[];
    const fetching = history.find((h) => h.CreatedBy.includes('cpe.tar'));
    expect(fetching?.CreatedBy).toMatch(/^\|3 BASE=\S+ SERVED_DIGEST=[0-9a-f]{64} SERVER_PORT=\d+ /);
    expect(history.map((h) => h.CreatedBy).join('\n')).not.toMatch(/SERVER_PREFIX|[0-9a-f]{32}\/cpe/);
    // Provenance labels are on the image.
    const info = await docker.getImage(img.imageId).inspect();
    expect(info.Config.Labels['io.sifkit.definition-hash']).toBe(img.definitionHash);
    expect(info.Config.Labels['io.sifkit.recipe']).toBe('clean');

    const again = await runCli(['build', fx.dir, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).images[0]).toMatchObject({ reused: true, imageId: img.imageId });
  });

  it('catches a step that forgets to remove the licensed files (exit 3, layer and path named)', async () => {
    const fx = await fixtureRecipe(
      'forgets',
      'RUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; tar -xf /cpe.tar; rm /cpe.tar',
    );
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/licensed file \/opt\/cray\S* is in layer \S+ \(licensed path\)/);
    expect(await imageExists(fx.tag)).toBe(false);
  });

  it('refuses a definition that keeps the server URL in its environment (exit 3)', async () => {
    const fx = await fixtureRecipe('urlenv', 'ENV CPE_URL="$BASE/cpe.tar"\nRUN true');
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/the image config's config\.Env\[\d+\] \(server URL\); the image was removed/);
    expect(await imageExists(fx.tag)).toBe(false);
  });

  it('never reuses an image whose scan was interrupted: the next build scans it, and refuses the leak', async () => {
    // The case: a definition that keeps the licensed tarball, Ctrl-C during the scan, build again.
    const fx = await fixtureRecipe(
      'scanstop',
      'RUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; tar -xf /cpe.tar; rm /cpe.tar',
    );
    const recipe = await loadRecipe(fx.dir);
    const rendered = await renderFor(fx.dir, {});
    const ac = new AbortController();
    const before = new Set(await untaggedTestImages());
    await expect(
      buildVariant(engine, {
        recipe,
        rendered,
        logDir: path.join(fx.dir, 'logs'),
        signal: ac.signal,
        verdictDir,
        onProgress: (line) => {
          if (line.startsWith('scanning')) ac.abort();
        },
      }),
    ).rejects.toBeInstanceOf(InterruptedError);
    // Built, never tagged, no verdict.
    expect(await imageExists(fx.tag)).toBe(false);
    const left = (await untaggedTestImages()).filter((id) => !before.has(id));
    expect(left).toHaveLength(1);
    expect(await readVerdict(verdictDir, left[0])).toBeUndefined();

    const again = await runCli(['build', fx.dir]);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/licensed file \/opt\/cray/);
    expect(await imageExists(fx.tag)).toBe(false);
    expect(await readVerdict(verdictDir, left[0])).toMatchObject({ passed: false });
  });

  it('scans a clean image whose scan was interrupted before reusing it', async () => {
    const fx = await fixtureRecipe('scanstop2', 'RUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; rm /cpe.tar');
    const recipe = await loadRecipe(fx.dir);
    const rendered = await renderFor(fx.dir, {});
    const ac = new AbortController();
    await expect(
      buildVariant(engine, {
        recipe,
        rendered,
        logDir: path.join(fx.dir, 'logs'),
        signal: ac.signal,
        verdictDir,
        onProgress: (l) => l.startsWith('scanning') && ac.abort(),
      }),
    ).rejects.toBeInstanceOf(InterruptedError);
    expect(await imageExists(fx.tag)).toBe(false);
    // convert of the unscanned image warns (the pipeline never has it: build returns only scanned images).
    const [unscanned] = await untaggedTestImages('scanstop2');
    const sif = path.join(fx.dir, 'unscanned.sif');
    const c = await runCli(['convert', `docker-daemon:${unscanned}`, '-o', sif]);
    expect(c.code).toBe(0);
    expect(c.stderr).toMatch(
      /^sifkit: warning: image [0-9a-f]{12} was built by sifkit but has no passing leak scan for its ID/m,
    );
    const r = await runCli(['build', fx.dir, '--json']);
    expect(r.code).toBe(0);
    const img = JSON.parse(r.stdout).images[0];
    // Reused, but only after a scan now: the record carries its figures.
    expect(img).toMatchObject({ reused: true });
    expect(img.leakScan.layers).toBeGreaterThan(0);
    expect(await imageExists(fx.tag)).toBe(true);
    expect(await readVerdict(verdictDir, img.imageId)).toMatchObject({ passed: true });
  });

  it('keeps the layer cache across builds of the same served files: only the steps after a change run', async () => {
    const steps = 'RUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; rm /cpe.tar; echo fetched > /fetched';
    const a = await fixtureRecipe('cachea', steps);
    const first = await runCli(['build', a.dir, '--json', '--log-dir', `${a.dir}/logs`]);
    expect(first.code).toBe(0);
    // Same fragments up to a new last step, the same served files.
    const b = await fixtureRecipe('cacheb', `${steps}\nRUN echo the new last step > /last`);
    const second = await runCli(['build', b.dir, '--json', '--server-files', a.served, '--log-dir', `${b.dir}/logs`]);
    expect(second.code).toBe(0);
    const log = await fs.readFile(JSON.parse(second.stdout).images[0].logPath, 'utf8');
    const steps2 = log.split(/Step \d+\/\d+ : /).slice(1);
    const fetchStep = steps2.find((st) => st.startsWith('RUN set -e; cd /; $GET'));
    expect(fetchStep).toContain('Using cache');
    const last = steps2.find((st) => st.startsWith('RUN echo the new last step'));
    expect(last).not.toContain('Using cache');
  });

  it('catches files removed only in a later layer: the bytes are still in the image', async () => {
    const fx = await fixtureRecipe(
      'later',
      'RUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; tar -xf /cpe.tar; rm /cpe.tar\nRUN rm -rf /opt/cray',
    );
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/licensed file \/opt\/cray/);
  });

  it('catches served content copied to an innocent path, by digest', async () => {
    const fx = await fixtureRecipe('copied', 'RUN set -e; mkdir -p /data; $GET /data/notes.txt $BASE/token');
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/\/data\/notes.txt is in layer .*served content/);
  });

  it('fails a failing step with exit 1, naming the step and showing its last lines', async () => {
    const fx = await fixtureRecipe('fails', 'RUN echo about to fail; exit 7');
    const before = await allContainerIds();
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/step 8\/9 \(RUN echo about to fail; exit 7\) failed: .*returned a non-zero code: 7/);
    expect(r.stderr).toContain('about to fail');
    const after = await allContainerIds();
    expect([...after].filter((id) => !before.has(id))).toEqual([]);
  });

  it('stops on Ctrl-C with exit 130 and leaves no container behind', async () => {
    // Far longer than the test's timeout: only the interrupt can end this build in time.
    const fx = await fixtureRecipe('slow', 'RUN echo sleeping; sleep 3600');
    const before = await allContainerIds();
    let sent = false;
    const r = await runCli(['build', fx.dir], {
      onStderr: (text, kill) => {
        if (!sent && text.includes('step 8/9')) {
          sent = true;
          // Interrupted once the step's container exists (polled), not after a guessed time.
          void (async () => {
            await until(async () => [...(await allContainerIds())].some((id) => !before.has(id)), 50);
            kill('SIGINT');
          })();
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    // The engine removes the build container asynchronously: polled until it is gone (jest's timeout bounds it).
    await until(async () => ![...(await allContainerIds())].some((id) => !before.has(id)), 200);
    expect(await imageExists(fx.tag)).toBe(false);
  });

  it('refuses a missing server-files directory (exit 2)', async () => {
    const fx = await fixtureRecipe('noserver', 'RUN true');
    const r = await runCli(['build', fx.dir, '--server-files', '/nonexistent/served']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^sifkit: error: --server-files \/nonexistent\/served: missing or not a directory \(ENOENT\)$/m,
    );
  });

  it('says where it looked when no engine answers (exit 1)', async () => {
    const fx = await fixtureRecipe('noengine', 'RUN true');
    const r = await runCli(['build', fx.dir], { env: { DOCKER_HOST: 'unix:///tmp/sifkit-no-such-engine.sock' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no Docker engine answers at unix:///tmp/sifkit-no-such-engine.sock');
    expect(r.stderr).toMatch(/hint: start one/);
  });

  it('builds the built-in example mpi4py-cpu from the shared fragments: labels, WITH_CONDA, the served tools, no Cray files', async () => {
    const r = await runCli(['build', 'mpi4py-cpu', '--json']);
    expect(r.code).toBe(0);
    const img = JSON.parse(r.stdout).images[0];
    expect(img.tag).toBe('lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4-conda-mpi4py');
    if (!img.reused) expect(img.leakScan).toMatchObject({ tools: 2 });
    if (!img.reused) expect(img.leakScan.layers).toBeGreaterThan(3);
    const info = await docker.getImage(img.imageId).inspect();
    expect(info.Config.Env).toContain('WITH_CONDA=source /opt/miniconda3/bin/activate mpi4py');
    expect(info.Config.Env).toContain('ROCM_PATH=/opt/rocm-6.2.0');
    expect(info.Config.Labels['io.sifkit.param.mpi4py']).toBe('3.1.4');
    // The verdict was reached with the roles the recipe declares.
    expect((await readVerdict(verdictDir, img.imageId))?.roles).toBe(
      'amdgpu-arch.cpp licensed\ncpe-23.09.tar licensed\nrocm_agent_enumerator tool /opt/rocm-6.2.0/bin/rocm_agent_enumerator\nrocminfo tool /opt/rocm-6.2.0/bin/rocminfo',
    );
    // What the shared steps left: the served tools (byte for byte, as served), amdgpu-arch compiled
    // from the served source (gone), the Cray hook's trace without the Cray files, WITH_CONDA's environment.
    const served = path.join(__dirname, '..', '..', 'docker-defs', 'mpi4py-cpu', 'server-files');
    const script = [
      'set -e',
      'cmp /opt/rocm-6.2.0/bin/rocminfo /served/rocminfo',
      'cmp /opt/rocm-6.2.0/bin/rocm_agent_enumerator /served/rocm_agent_enumerator',
      'test "$(amdgpu-arch | wc -l)" = 8',
      'test ! -e /tmp/amdgpu-arch.cpp',
      'test ! -e /opt/cray',
      'cat /opt/sifkit-example/built-against-cpe',
      '$WITH_CONDA',
      'python -c "import mpi4py, sys; print(sys.prefix, mpi4py.__version__)"',
    ].join('\n');
    const c = await docker.createContainer({
      Image: img.imageId,
      Cmd: ['sh', '-c', script],
      HostConfig: { Binds: [`${served}:/served:ro`], NetworkMode: 'none' },
      Labels: { [TEST_LABEL]: runId },
    });
    try {
      const out: Buffer[] = [];
      const stream = await c.attach({ stream: true, stdout: true, stderr: true });
      stream.on('data', (d: Buffer) => out.push(d));
      await c.start();
      const { StatusCode } = (await c.wait()) as { StatusCode: number };
      const text = Buffer.concat(out).toString('latin1');
      expect([StatusCode, text]).toEqual([0, expect.stringContaining('/opt/miniconda3/envs/mpi4py 3.1.4')]);
      expect(text).toContain('built against CPE 23.09');
    } finally {
      await c.remove({ force: true });
    }
  });
});

describe('two builds of the same served files at once, through the release build stage', () => {
  /** The engine's build output of one step: the stream lines from its `Step` line to the next. */
  async function stepOutput(logPath: string, startsWith: string): Promise<string> {
    const text = (await fs.readFile(logPath, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { stream?: string }).stream ?? '')
      .join('');
    const steps = text.split(/(?=^Step \d+\/\d+ : )/m);
    return steps.find((s) => /^Step \d+\/\d+ : (.*)/.exec(s)?.[1].startsWith(startsWith)) ?? '';
  }

  it('share one file server: one port, no fallback, and both take the fetching step from the cache', async () => {
    const fetch = 'RUN set -e; $GET /cpe.tar $BASE/cpe.tar';
    const fx = await fixtureRecipe(
      'shared',
      `${fetch}; tar -tf /cpe.tar > /listed; rm /cpe.tar\nRUN echo "v {{ v }}" > /v`,
    );
    const recipe = await loadRecipe(fx.dir);
    const logDir = path.join(fx.dir, 'logs');
    const run = (versions: string[]) =>
      newContext({
        recipe,
        values: versions.map((v) => resolveValues(recipe, { v })),
        signal: new AbortController().signal,
        // Two builds at once on the one engine, as the release's build slots allow (--build-jobs 2).
        options: { logDir, slots: { build: 2 } },
        date: '20261203',
      });
    const builds = defOf('render', 'build');
    // First one variant: the engine's cache then holds the fetching step, keyed by the derived port.
    const first = run(['1.0']);
    await runPipeline(builds, first, STAGES, { renderer: 'silent', jobs: 1 });
    expect(first.variants[0].error?.message).toBeUndefined();

    const ctx = run(['2.0', '3.0']);
    // The plan counts the fetching step cached for both, so neither waits for the other.
    const plan = await planRun(ctx);
    const rendered = await renderRecipe(recipe, { values: ctx.variants[0].values, date: ctx.date });
    const steps = variantSteps(rendered, {}, variantBuildArgs(recipe, rendered, await runServed(ctx)));
    const fetchStep = steps.findIndex((s) => s.text.startsWith(fetch));
    expect(fetchStep).toBeGreaterThan(0);
    expect(plan.variants.map((v) => [v.after, v.cached])).toEqual([
      [undefined, fetchStep + 1],
      [undefined, fetchStep + 1],
    ]);
    // Each lease waits for the other's before its build goes on: the two builds hold the server at once.
    const servers = ctx.run.fileServers;
    let leased = 0;
    ctx.run.fileServers = {
      get open() {
        return servers.open;
      },
      async lease(req) {
        const lease = await servers.lease(req);
        leased++;
        await until(() => leased >= 2);
        return lease;
      },
    };
    await runPipeline(builds, ctx, STAGES, { renderer: 'silent', jobs: 2 });
    for (const v of ctx.variants) expect(v.error?.message).toBeUndefined();
    expect(servers.open).toBe(0);

    const records = ctx.variants.map((v) => v.results.build!);
    const access = await Promise.all(records.map((r) => fs.readFile(r.accessLogPath!, 'utf8')));
    const ports = access.map((l) => /^# \S+ \S+: requests on 127\.0\.0\.1:(\d+) /.exec(l)?.[1]);
    expect(ports).toEqual(Array(2).fill(String(derivePort(await servedFilesDigest(fx.served)))));
    expect(access.join('')).toMatch(/also building with it now: sifkittest-shared\S*/);
    for (const r of records) {
      expect(r.reused).toBe(false);
      // The engine took the fetching step from its cache: the port and digest were the ones it was built with.
      expect(await stepOutput(r.logPath!, fetch)).toContain('Using cache');
      expect(await stepOutput(r.logPath!, 'RUN echo')).not.toContain('Using cache');
    }
  });
});
