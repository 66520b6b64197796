/**
 * Git sources (src/sources/git.ts) against a real git server: git's own
 * http-backend behind local HTTPS (test/support/git-server.ts), standing
 * in for GitHub and AMD's CuPy fork. `sifkit fetch` takes exactly the
 * pinned commit, as a tarball whose bytes depend only on the commit; a
 * branch that moved on or was force-pushed since the pin changes nothing;
 * a commit the server does not have is refused in one line; a second
 * fetch is answered by the cache with no request; moving the pin is a new
 * definition hash, moving the URL is not.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { loadRecipe } from '../../src/recipe/load';
import { renderRecipe } from '../../src/recipe/render-recipe';
import { runCli } from '../support/cli';
import { git, startGitServer, type GitServer } from '../support/git-server';
import { seededBytes } from '../support/upstream';
import { tinyRecipeText } from '../support/recipes';

const SEED = Number(process.env.SIFKIT_TEST_SEED ?? Date.now() % 100000);
console.log(`sources-git seed ${SEED} (SIFKIT_TEST_SEED=${SEED} repeats it)`);

jest.setTimeout(180_000);

let tmp: string;
let server: GitServer;
let work: string;
let bare: string;
/** The pinned commit, and what its tree holds. */
let pinned: string;
const payload = seededBytes(SEED, 256 * 1024 + 3);

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h33-git-'));
  server = await startGitServer(tmp);
  work = path.join(tmp, 'work');
  bare = path.join(server.root, 'fork.git');
  await git(['init', '--quiet', '--initial-branch', 'master', work], tmp);
  await fs.mkdir(path.join(work, 'src'));
  await fs.writeFile(path.join(work, 'src', 'data.bin'), payload);
  await fs.writeFile(path.join(work, 'setup.sh'), '#!/bin/sh\necho built\n', { mode: 0o755 });
  await fs.symlink('src/data.bin', path.join(work, 'link'));
  await git(['add', '-A'], work);
  await git(['commit', '--quiet', '-m', 'the pinned commit'], work);
  pinned = await git(['rev-parse', 'HEAD'], work);
  await git(['init', '--quiet', '--bare', bare], tmp);
  await git(['push', '--quiet', bare, 'master'], work);
});
afterAll(async () => {
  await server.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Recipe `gitty` (in a tree of its own, named `tree`) whose one source is the fork at `commit`. */
async function writeRecipe(tree: string, commit: string, sha256 = 'unverified', url = `${server.url}/fork.git`) {
  const name = 'gitty';
  const dir = path.join(tmp, tree, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(
    path.join(dir, 'recipe.yaml'),
    tinyRecipeText(name, 'sources:', '  fork:', `    git: ${url}`, `    commit: ${commit}`, `    sha256: ${sha256}`),
  );
  await fs.writeFile(
    path.join(dir, 'a.docker'),
    'FROM scratch\nARG SERVER_PORT\nRUN {{ source "fork" "/fork.tar" }}\n',
  );
  return dir;
}

const env = () => ({ GIT_SSL_CAINFO: server.caFile });

async function fetchJson(dir: string, cache: string) {
  const r = await runCli(['fetch', dir, '--cache', cache, '--json'], { env: env() });
  expect(r.stderr).not.toMatch(/error/);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).sources[0] as { how: string; sha256: string; commit: string; file: string };
}

/** Every entry of a tarball: name, type, mode, mtime, owner, and its bytes' sha256. */
async function listing(file: string): Promise<string[]> {
  const out: string[] = [];
  const ex = tar.extract();
  ex.on('entry', (h, stream, next) => {
    const hash = createHash('sha256');
    stream.on('data', (b) => hash.update(b as Buffer));
    stream.on('end', () => {
      out.push(
        `${h.name} ${h.type} ${(h.mode ?? 0).toString(8)} ${h.mtime?.getTime()} ${h.uid}:${h.gid} ${h.linkname ?? ''} ${h.type === 'file' ? hash.digest('hex') : ''}`,
      );
      next();
    });
  });
  await pipeline(createReadStream(file), ex);
  return out;
}

/** Every file under dir (none when dir does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  const all = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return all.filter((d) => !d.isDirectory()).map((d) => d.name);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let digest: string;

describe('a git source', () => {
  it('is fetched at its pinned commit as a tarball of the tree alone; a second fetch makes no request', async () => {
    const dir = await writeRecipe('defs-1', pinned);
    const cache = path.join(tmp, 'cache-1');
    const first = await fetchJson(dir, cache);
    expect(first).toMatchObject({ how: 'fetched', commit: pinned });
    expect(first.file).toBe(path.join(cache, 'git', `${pinned}.tar`));
    digest = first.sha256;
    expect(sha(await fs.readFile(first.file))).toBe(digest);
    // Sorted, owner 0:0, mtime 0, modes 0644/0755, no .git: nothing of the host or the day.
    expect(await listing(first.file)).toEqual([
      'link symlink 777 0 0:0 src/data.bin ',
      `setup.sh file 755 0 0:0  ${sha(Buffer.from('#!/bin/sh\necho built\n'))}`,
      'src/ directory 755 0 0:0  ',
      `src/data.bin file 644 0 0:0  ${sha(payload)}`,
    ]);
    expect(server.requests.length).toBeGreaterThan(0);

    const seen = server.requests.length;
    const again = await fetchJson(dir, cache);
    expect(again).toMatchObject({ how: 'cached', commit: pinned, sha256: digest });
    expect(server.requests.length).toBe(seen);
  });

  it('still yields the pinned commit, byte for byte, after the branch moved on and was force-pushed', async () => {
    // Moved on: a new commit on top of the pin.
    await fs.writeFile(path.join(work, 'src', 'data.bin'), seededBytes(SEED + 1, 1000));
    await git(['commit', '--quiet', '-am', 'later work'], work, '2026-02-01T00:00:00Z');
    await git(['push', '--quiet', bare, 'master'], work);
    const moved = await fetchJson(await writeRecipe('defs-moved', pinned, digest), path.join(tmp, 'cache-2'));
    expect(moved).toMatchObject({ how: 'fetched', commit: pinned, sha256: digest });

    // Force-pushed: master is now a history the pin is not part of (no branch or tag reaches it).
    await git(['checkout', '--quiet', '--orphan', 'rewritten'], work);
    await fs.writeFile(path.join(work, 'setup.sh'), '#!/bin/sh\necho rewritten\n');
    await git(['commit', '--quiet', '-am', 'history rewritten'], work, '2026-03-01T00:00:00Z');
    await git(['push', '--quiet', '--force', bare, 'rewritten:master'], work);
    expect(await git(['branch', '--contains', pinned], bare)).toBe('');
    const forced = await fetchJson(await writeRecipe('defs-forced', pinned, digest), path.join(tmp, 'cache-3'));
    expect(forced).toMatchObject({ how: 'fetched', commit: pinned, sha256: digest });
  });

  it('refuses, in one line, a commit the server does not have, and keeps nothing', async () => {
    const absent = createHash('sha1').update(`absent ${SEED}`).digest('hex');
    const dir = await writeRecipe('defs-absent', absent);
    const cache = path.join(tmp, 'cache-4');
    const r = await runCli(['fetch', dir, '--cache', cache], { env: env() });
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error:'));
    expect(lines).toEqual([
      `sifkit: error: ${server.url}/fork.git has no commit ${absent} (not fetchable by its id, nor in any branch or tag)`,
    ]);
    expect(await filesUnder(cache)).toEqual([]);
  });

  it('refuses a tree whose tarball is not the recorded sha256', async () => {
    const wrong = sha(Buffer.from(`not the tree ${SEED}`));
    const dir = await writeRecipe('defs-wrong', pinned, wrong);
    const cache = path.join(tmp, 'cache-5');
    const r = await runCli(['fetch', dir, '--cache', cache], { env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`@ ${pinned}: sha256 mismatch of the tree's tarball: expected ${wrong}, got ${digest}`);
    expect(await filesUnder(cache)).toEqual([]);
  });

  it('refuses a server whose certificate it cannot verify (TLS is never switched off)', async () => {
    const dir = await writeRecipe('defs-tls', pinned);
    const r = await runCli(['fetch', dir, '--cache', path.join(tmp, 'cache-6')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sifkit: error: git fetch failed \(exit 128\): fatal: unable to access .*certificate/i);
  });

  it('moving the pin is a new definition hash; moving the URL is not', async () => {
    const hashOf = async (dir: string) =>
      (await renderRecipe(await loadRecipe(dir), { date: '20260101' })).definitionHash;
    const base = await hashOf(await writeRecipe('defs-h1', pinned));
    const other = await git(['rev-parse', 'HEAD'], work);
    expect(await hashOf(await writeRecipe('defs-h2', other))).not.toBe(base);
    expect(
      await hashOf(await writeRecipe('defs-h3', pinned, 'unverified', 'https://mirror.example.org/fork.git')),
    ).toBe(base);
  });
});
