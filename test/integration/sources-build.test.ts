/**
 * The CPU example builds its declared source from the source cache only:
 * `sifkit fetch` against a stand-in upstream, then the upstream cut off
 * the network (an iptables rule resets every connection to it; the server
 * itself keeps running and counts what reaches it: nothing), then
 * `sifkit build --offline` on the real engine. A tampered cached file is
 * refused before any build step runs; a source missing from the cache is
 * refused offline.
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { defaultDefsRoot } from '../../src/recipe/load';
import * as net from 'node:net';
import { runCli } from '../support/cli';
import { docker, removeTestImages, runId, TEST_LABEL } from '../support/engine';
import { cutPort } from '../support/netcut';
import { startUpstream, type Upstream } from '../support/upstream';

jest.setTimeout(900_000);

const stateDir = mkdtempSync(path.join(os.tmpdir(), 'sifkit-h30-state-'));
process.env.SIFKIT_STATE_DIR = stateDir;

const SHIPPED = path.join(defaultDefsRoot(), 'mpi4py-cpu', 'sources', 'sifkit-demo-1.0.tar.gz');
const DIGEST = '10f857cc26ba1165a18f9928467aa92bcff2350e35ff36b09f652c999d7e3e84';

let tmp: string;
let up: Upstream;
let recipeDir: string;
/** The example image the first test builds (the third builds on it). */
let exampleTag: string;

/**
 * A copy of docker-defs whose example takes its demo source from the
 * stand-in upstream (a URL, not the shipped file), under a tag of its own
 * and labelled for this run's clean-up.
 */
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h30-build-'));
  up = await startUpstream();
  up.files.set('/dl/sifkit-demo-1.0.tar.gz', await fs.readFile(SHIPPED));
  const defs = path.join(tmp, 'defs');
  await fs.cp(defaultDefsRoot(), defs, { recursive: true });
  recipeDir = path.join(defs, 'mpi4py-cpu');
  const file = path.join(recipeDir, 'recipe.yaml');
  let text = await fs.readFile(file, 'utf8');
  text = text.replace('path: sources/sifkit-demo-1.0.tar.gz', `url: ${up.url}/dl/sifkit-demo-1.0.tar.gz`);
  text = text.replace('  prefix: lumi\n', '  prefix: h30test\n');
  // The run's own label goes right before the step that fetches the source, so the engine's layer
  // cache (another test may have built the example) cannot answer that step: it really fetches.
  text = text.replace(
    '  - mpi4py-cpu/demo-source.docker\n',
    '  - mpi4py-cpu/test-label.docker\n  - mpi4py-cpu/demo-source.docker\n',
  );
  await fs.writeFile(file, text);
  await fs.writeFile(path.join(recipeDir, 'test-label.docker'), `LABEL ${TEST_LABEL}="${runId}"\n`);
});
afterAll(async () => {
  await up.close();
  await removeTestImages();
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Runs a command in an image (no network) and returns what it printed. */
async function output(image: string, cmd: string[]): Promise<string> {
  const seen = new PassThrough();
  let text = '';
  seen.on('data', (b: Buffer) => (text += b.toString()));
  const [res] = (await (docker.run as (...a: unknown[]) => Promise<unknown>)(image, cmd, seen, {
    Tty: true,
    HostConfig: { AutoRemove: true, NetworkMode: 'none' },
    Labels: { [TEST_LABEL]: runId },
  } as never)) as unknown as [{ StatusCode: number }];
  expect(res.StatusCode).toBe(0);
  return text;
}

/** A TCP connection to 127.0.0.1:port, closed as soon as it is made. */
function connect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.destroy();
      resolve();
    });
    sock.on('error', reject);
  });
}

describe('a build from the source cache', () => {
  it('fetches, then builds with the upstream cut off the network; the image holds the source and names it in its labels', async () => {
    const cache = path.join(tmp, 'cache');
    const fetched = await runCli(['fetch', recipeDir, '--cache', cache, '--json']);
    expect(fetched.code).toBe(0);
    expect(JSON.parse(fetched.stdout).sources).toEqual([
      expect.objectContaining({ name: 'demo', how: 'fetched', sha256: DIGEST }),
    ]);
    const logs = path.join(tmp, 'logs');
    const asked = up.requests.length;
    const cut = await cutPort(up.port, `sifkit-test-${runId}`);
    let built: Awaited<ReturnType<typeof runCli>>;
    try {
      // The cut holds: a connection to the upstream is refused though its server still listens.
      await expect(connect(up.port)).rejects.toThrow(/ECONNREFUSED/);
      built = await runCli(['build', recipeDir, '--offline', '--source-cache', cache, '--log-dir', logs, '--json']);
    } finally {
      await cut.restore();
    }
    expect(built.stderr).not.toContain('error');
    expect(built.code).toBe(0);
    expect(up.requests.length).toBe(asked);
    const img = JSON.parse(built.stdout).images[0];
    exampleTag = img.tag;
    const info = await docker.getImage(img.imageId).inspect();
    expect(info.Config.Labels['io.sifkit.sources']).toBe(`demo@sha256:${DIGEST}`);
    // The file server served the source by its digest, from the cache.
    expect(await fs.readFile(img.accessLogPath, 'utf8')).toMatch(new RegExp(`GET "/sources/sha256/${DIGEST}" 200`));
    const out = await runCli(['build', recipeDir, '--offline', '--source-cache', cache, '--log-dir', logs, '--json']);
    expect(JSON.parse(out.stdout).images[0]).toMatchObject({ imageId: img.imageId, reused: true });
    // The source stayed in the image, unpacked (a source may: its role is `source`).
    const seen = new PassThrough();
    let text = '';
    seen.on('data', (b: Buffer) => (text += b.toString()));
    const [res] = (await (docker.run as (...a: unknown[]) => Promise<unknown>)(
      img.imageId,
      ['cat', '/opt/sifkit-demo/hello_mpi.py'],
      seen,
      { Tty: true, HostConfig: { AutoRemove: true, NetworkMode: 'none' }, Labels: { [TEST_LABEL]: runId } } as never,
    )) as unknown as [{ StatusCode: number }];
    expect(res.StatusCode).toBe(0);
    expect(text).toContain('hello_mpi: rank');

    // Tampered: one byte of the cached file changed. Refused before any build step: no build log is written.
    const cached = path.join(cache, 'sha256', DIGEST);
    const bytes = await fs.readFile(cached);
    bytes[bytes.length - 1] ^= 0xff;
    await fs.writeFile(cached, bytes);
    const before = (await fs.readdir(logs)).filter((f) => f.endsWith('.build.log'));
    const tampered = await runCli([
      'build',
      recipeDir,
      '--rebuild',
      '--offline',
      '--source-cache',
      cache,
      '--log-dir',
      logs,
    ]);
    expect(tampered.code).toBe(3);
    expect(tampered.stderr).toMatch(
      new RegExp(
        `sifkit: error: ${cached.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(source demo, .*\\): sha256 mismatch: expected ${DIGEST}, got [0-9a-f]{64}`,
      ),
    );
    // The hint's commands name this file, this recipe and this cache: they can be pasted.
    expect(tampered.stderr).toContain(
      `sifkit: hint: the cached file changed after it was verified: rm -- ${cached}, then sifkit fetch ${recipeDir} --matrix --cache ${cache}\n`,
    );
    expect((await fs.readdir(logs)).filter((f) => f.endsWith('.build.log'))).toEqual(before);
  });

  it('refuses, offline, a source missing from the cache, before any build step', async () => {
    const logs = path.join(tmp, 'logs-missing');
    const r = await runCli([
      'build',
      recipeDir,
      '--rebuild',
      '--offline',
      '--source-cache',
      path.join(tmp, 'empty-cache'),
      '--log-dir',
      logs,
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /source demo \(http:\/\/127\.0\.0\.1:\d+\/dl\/sifkit-demo-1\.0\.tar\.gz\) is not in the source cache .* --offline forbids fetching it/,
    );
    expect(r.stderr).toContain(
      `sifkit: hint: on a host with network: sifkit fetch ${recipeDir} --matrix --cache ${path.join(tmp, 'empty-cache')}; or give --source-cache DIR\n`,
    );
    await expect(fs.readdir(logs)).rejects.toThrow(/ENOENT/);
  });

  it('builds one definition twice, engine cache off, into the same contents: every file the source step wrote, byte for byte', async () => {
    // The example's own source step, on the example image: only that step runs, twice, from the cache.
    const dir = path.join(path.dirname(recipeDir), 'h33-derived');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(
      path.join(dir, 'recipe.yaml'),
      [
        'name: h33-derived',
        'naming: { prefix: h30test, version: v, parts: [[v, v]] }',
        'fragments: [h33-derived/from.docker, mpi4py-cpu/demo-source.docker]',
        'runtime_args: [SERVER_PORT]',
        'parameters:',
        '  v: { type: version, default: 1.0.0 }',
        'sources:',
        '  demo:',
        `    url: ${up.url}/dl/sifkit-demo-1.0.tar.gz`,
        `    sha256: ${DIGEST}`,
      ].join('\n'),
    );
    await fs.writeFile(path.join(dir, 'from.docker'), `FROM ${exampleTag}\nARG SERVER_PORT\n`);
    // A cache of its own (the first test tampered with its copy on purpose).
    const cache = path.join(tmp, 'cache-derived');
    expect((await runCli(['fetch', dir, '--cache', cache])).code).toBe(0);
    // It declares no served file: no --server-files, the file server serves the cached source alone.
    const build = async () => {
      const r = await runCli([
        'build',
        dir,
        '--offline',
        '--rebuild',
        '--source-cache',
        cache,
        '--log-dir',
        path.join(tmp, 'logs-derived'),
        '--json',
      ]);
      expect(r.stderr).not.toContain('error');
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout).images[0] as { imageId: string; definitionHash: string; accessLogPath: string };
    };
    const a = await build();
    const b = await build();
    expect(b.definitionHash).toBe(a.definitionHash);
    // Two real builds (the engine's cache was off), not one image found twice.
    expect(b.imageId).not.toBe(a.imageId);
    const list = [
      'sh',
      '-c',
      "cd /opt/sifkit-demo && find . -printf '%p %y %m %s %l\\n' | sort && find . -type f -exec sha256sum {} + | sort",
    ];
    const first = await output(a.imageId, list);
    expect(first).toContain('./hello_mpi.py f 755 ');
    expect(first).toMatch(/[0-9a-f]{64} {2}\.\/__pycache__\/hello_mpi\.cpython-\d+\.pyc/);
    expect(await output(b.imageId, list)).toBe(first);
    // The source came from the file server, which ran without a served directory.
    expect(await fs.readFile(b.accessLogPath, 'utf8')).toMatch(new RegExp(`GET "/sources/sha256/${DIGEST}" 200`));
    // And the source step's layer is the same tar, byte for byte: the same diff ID (the step
    // sets the mtimes it would otherwise leave to the clock). Every other layer is the base's.
    const layers = async (id: string) => (await docker.getImage(id).inspect()).RootFS.Layers ?? [];
    const [la, lb, base] = await Promise.all([layers(a.imageId), layers(b.imageId), layers(exampleTag)]);
    expect(la.length).toBe(base.length + 1);
    expect(lb).toEqual(la);
  });

  it('names what is missing: served files declared and no directory, or a named directory that is not there', async () => {
    // The example declares served files (licensed and tools) and ships its server-files/: without it, the build
    // says which files it lacks, not that it "fetches licensed files".
    const copy = path.join(path.dirname(recipeDir), 'h41-no-dir');
    await fs.cp(recipeDir, copy, { recursive: true });
    const file = path.join(copy, 'recipe.yaml');
    await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replace('server_files: server-files\n', ''));
    const logs = path.join(tmp, 'logs-no-dir');
    const r = await runCli(['build', copy, '--offline', '--source-cache', path.join(tmp, 'cache'), '--log-dir', logs]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^sifkit: error: \S+ declares served files cpe-[\d.]+\.tar \(licensed\), rocminfo \(tool\), rocm_agent_enumerator \(tool\), amdgpu-arch\.cpp \(licensed\) and no directory holds them: give --server-files DIR$/m,
    );
    const gone = path.join(tmp, 'not-there');
    const named = await runCli(['build', copy, '--server-files', gone, '--log-dir', logs]);
    expect(named.code).toBe(2);
    expect(named.stderr).toContain(`sifkit: error: --server-files ${gone}: missing or not a directory (ENOENT)`);
    await expect(fs.readdir(logs)).rejects.toThrow(/ENOENT/);
  });
});
