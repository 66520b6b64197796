/**
 * `sifkit fetch` and the source cache against a real HTTP server standing
 * in for the upstream site: the digest checked, a second fetch making no
 * request, a checksum mismatch, a moved URL, a truncated download, an
 * interrupted fetch resumed with a Range request, a 404 not retried, an
 * unverified source refused before anything is downloaded.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchSources } from '../../src/sources/cache';
import { loadRecipe } from '../../src/recipe/load';
import { renderRecipe } from '../../src/recipe/render-recipe';
import type { ResolvedSource } from '../../src/recipe/sources';
import { runCli } from '../support/cli';
import { seededBytes, startUpstream, type Upstream } from '../support/upstream';
import { tinyRecipeText } from '../support/recipes';

const SEED = Number(process.env.SIFKIT_TEST_SEED ?? Date.now() % 100000);

console.log(`sources-fetch seed ${SEED} (SIFKIT_TEST_SEED=${SEED} repeats it)`);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const quick = { retries: 3, backoffMs: 20, idleTimeoutMs: 5000 };

let up: Upstream;
let tmp: string;
const A = seededBytes(SEED, 3 * 1024 * 1024 + 17);
const B = seededBytes(SEED + 1, 200 * 1024);

beforeEach(async () => {
  up = await startUpstream();
  up.files.set('/files/a-1.0.tar.gz', A);
  // Version 2.0 of `a` is the same file under another URL: one copy in the cache.
  up.files.set('/files/a-2.0.tar.gz', A);
  up.files.set('/files/b.bin', B);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h30-fetch-'));
});
afterEach(async () => {
  await up.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A recipe under tmp/defs whose sources are on the stand-in upstream. */
async function writeRecipe(sources: string): Promise<string> {
  const dir = path.join(tmp, 'defs', 'tiny');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(
    path.join(dir, 'recipe.yaml'),
    tinyRecipeText('tiny', 'matrix: [{ v: 1.0.0 }, { v: 2.0.0 }]', sources),
  );
  await fs.writeFile(
    path.join(dir, 'a.docker'),
    'FROM scratch\nARG SERVER_PORT\nRUN {{ source "a" "/a.tgz" }} ; {{ source "b" "/b.bin" }}\n',
  );
  return dir;
}

function sourcesYaml(aSha = sha(A)): string {
  return `sources:\n  a:\n    url: ${up.url}/files/a-{{ v | majmin }}.tar.gz\n    by: v\n    sha256:\n      1.0.0: ${aSha}\n      2.0.0: ${aSha}\n  b:\n    url: ${up.url}/files/b.bin\n    sha256: ${sha(B)}`;
}

async function resolved(dir: string, values: Record<string, string> = {}): Promise<ResolvedSource[]> {
  return (await renderRecipe(await loadRecipe(dir), { values, date: '20260101' })).sources;
}

const cacheFiles = async (cache: string) =>
  (await fs.readdir(path.join(cache, 'sha256')).catch(() => [] as string[])).sort();

jest.setTimeout(120_000);

describe('sifkit fetch', () => {
  it('fills the cache once for the whole matrix; a second fetch makes no request', async () => {
    const dir = await writeRecipe(sourcesYaml());
    const cache = path.join(tmp, 'cache');
    const first = await runCli(['fetch', dir, '--matrix', '--cache', cache, '--json']);
    expect(first.stderr).toContain('fetched');
    expect(first.code).toBe(0);
    const doc = JSON.parse(first.stdout);
    // Two variants, the same two files: each fetched once.
    expect(doc.sources.map((s: { name: string; how: string }) => `${s.name} ${s.how}`)).toEqual([
      'a fetched',
      'b fetched',
    ]);
    expect(await cacheFiles(cache)).toEqual([sha(A), sha(B)].sort());
    expect(sha(await fs.readFile(path.join(cache, 'sha256', sha(A))))).toBe(sha(A));
    expect(up.requests.filter((r) => r.startsWith('GET')).length).toBe(2);

    up.requests.length = 0;
    const second = await runCli(['fetch', dir, '--matrix', '--cache', cache, '--json']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout).sources.map((s: { how: string }) => s.how)).toEqual(['cached', 'cached']);
    expect(up.requests).toEqual([]);
  });

  it('refuses a checksum mismatch in one line naming the URL and both digests, keeping nothing', async () => {
    const wrong = 'f'.repeat(64);
    const dir = await writeRecipe(sourcesYaml(wrong));
    const cache = path.join(tmp, 'cache');
    const r = await runCli(['fetch', dir, '--cache', cache]);
    expect(r.code).toBe(3);
    const line = r.stderr.split('\n').find((l) => l.startsWith('sifkit: error:')) ?? '';
    expect(line).toContain(`${up.url}/files/a-1.0.tar.gz`);
    expect(line).toContain(`expected ${wrong}`);
    expect(line).toContain(`got ${sha(A)}`);
    await expect(fs.stat(path.join(cache, 'sha256', wrong))).rejects.toThrow(/ENOENT/);
    expect(await fs.readdir(path.join(cache, 'partial'))).toEqual([]);
    // Not retried: one request for the file.
    expect(up.requests.filter((q) => q.includes('a-1.0')).length).toBe(1);
  });

  it('follows a moved URL (a redirect) and checks what it gets', async () => {
    const dir = await writeRecipe(sourcesYaml());
    up.files.delete('/files/a-1.0.tar.gz');
    up.files.set('/new/a-1.0.tar.gz', A);
    up.moved.set('/files/a-1.0.tar.gz', '/new/a-1.0.tar.gz');
    const got = await fetchSources(await resolved(dir), {
      cache: path.join(tmp, 'cache'),
      signal: new AbortController().signal,
      download: quick,
    });
    expect(got[0]).toMatchObject({ name: 'a', how: 'fetched', requests: 2, bytes: A.length });
    expect(up.requests.filter((q) => q.includes('a-1.0'))).toEqual([
      'GET /files/a-1.0.tar.gz',
      'GET /new/a-1.0.tar.gz',
    ]);
  });

  it('resumes a truncated download with a Range request', async () => {
    const dir = await writeRecipe(sourcesYaml());
    up.cutOnce.add('/files/a-1.0.tar.gz');
    const retries: string[] = [];
    const got = await fetchSources(await resolved(dir), {
      cache: path.join(tmp, 'cache'),
      signal: new AbortController().signal,
      download: quick,
      onProgress: (l) => retries.push(l),
    });
    // The server sent half; what reached the disk before the cut is kept and resumed from.
    expect(got[0].resumedFrom).toBeGreaterThan(0);
    expect(got[0].resumedFrom).toBeLessThanOrEqual(Math.floor(A.length / 2));
    expect(up.requests.filter((q) => q.includes('a-1.0'))).toEqual([
      'GET /files/a-1.0.tar.gz',
      `GET /files/a-1.0.tar.gz bytes=${got[0].resumedFrom}-`,
    ]);
    expect(retries.some((l) => /retry 1/.test(l))).toBe(true);
    expect(sha(await fs.readFile(path.join(tmp, 'cache', 'sha256', sha(A))))).toBe(sha(A));
  });

  it('resumes a fetch killed mid-download', async () => {
    const dir = await writeRecipe(sourcesYaml());
    const cache = path.join(tmp, 'cache');
    up.slow.set('/files/a-1.0.tar.gz', 64 * 1024);
    const partial = path.join(cache, 'partial', `${sha(A)}.part`);
    let killed = false;
    // Killed outright (no clean-up) once its progress shows bytes arriving.
    const run = runCli(['fetch', dir, '--cache', cache, '--jobs', '1'], {
      onStderr: (text, kill) => {
        if (!killed && /fetch: a: \d/.test(text)) {
          killed = true;
          kill('SIGKILL');
        }
      },
    });
    expect((await run).code).not.toBe(0);
    expect(killed).toBe(true);
    const had = (await fs.stat(partial)).size;
    expect(had).toBeGreaterThan(0);
    await expect(fs.stat(path.join(cache, 'sha256', sha(A)))).rejects.toThrow(/ENOENT/);

    up.slow.clear();
    up.requests.length = 0;
    const again = await runCli(['fetch', dir, '--cache', cache, '--json']);
    expect(again.code).toBe(0);
    const a = JSON.parse(again.stdout).sources.find((s: { name: string }) => s.name === 'a');
    expect(a.resumedFrom).toBe(had);
    expect(up.requests).toContain(`GET /files/a-1.0.tar.gz bytes=${had}-`);
    expect(sha(await fs.readFile(path.join(cache, 'sha256', sha(A))))).toBe(sha(A));
  });

  it('does not retry a 404', async () => {
    const dir = await writeRecipe(sourcesYaml());
    up.files.delete('/files/b.bin');
    const p = fetchSources(await resolved(dir), {
      cache: path.join(tmp, 'cache'),
      jobs: 1,
      signal: new AbortController().signal,
      download: quick,
    });
    await expect(p).rejects.toThrow(/files\/b\.bin: HTTP 404/);
    expect(up.requests.filter((q) => q.includes('b.bin')).length).toBe(1);
  });

  it('refuses an unverified source before downloading anything', async () => {
    const dir = await writeRecipe(sourcesYaml().replace(`sha256: ${sha(B)}`, 'sha256: unverified'));
    const r = await runCli(['fetch', dir, '--cache', path.join(tmp, 'cache')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/source b \(http:\/\/127\.0\.0\.1:\d+\/files\/b\.bin\) has no recorded sha256/);
    expect(up.requests).toEqual([]);
  });
});
