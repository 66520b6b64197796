/**
 * Git sources, the cases sources-git.test.ts leaves (issue 30): a tree
 * with a submodule, fetched with `submodules: true` (its files in the
 * tarball, no `.git` anywhere) or without (the submodule's directory
 * stays empty: a submodule is fetched only when the recipe says so); a
 * submodule that is not on https, refused in one line (exit 3) before git
 * tries; and a commit
 * reachable only through a tag from a server that will not give a commit
 * by its id (protocol v0, where only advertised tips may be asked for), so
 * the fetch falls back to the whole clone and finds it through the tag.
 * Real git on both ends: git's own http-backend behind local HTTPS.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { runCli } from '../support/cli';
import { git, startGitServer, type GitServer } from '../support/git-server';
import { seededBytes } from '../support/upstream';
import { tinyRecipeText } from '../support/recipes';

const SEED = Number(process.env.SIFKIT_TEST_SEED ?? Date.now() % 100000);
console.log(`sources-git-submodules seed ${SEED} (SIFKIT_TEST_SEED=${SEED} repeats it)`);

jest.setTimeout(180_000);

let tmp: string;
let server: GitServer;
/** The superproject's commit that records the submodule, and the submodule's payload. */
let withSub: string;
const subPayload = seededBytes(SEED, 64 * 1024 + 7);
const mainPayload = seededBytes(SEED + 1, 1000);

/** Makes a bare repository NAME.git on the server from a work tree with one commit per `commits` entry. */
async function publish(name: string, work: string): Promise<string> {
  const bare = path.join(server.root, `${name}.git`);
  await git(['init', '--quiet', '--bare', bare], tmp);
  await git(['push', '--quiet', bare, 'master'], work);
  return bare;
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h41-git-'));
  server = await startGitServer(tmp);
  const sub = path.join(tmp, 'sub');
  await git(['init', '--quiet', '--initial-branch', 'master', sub], tmp);
  await fs.writeFile(path.join(sub, 'sub.bin'), subPayload);
  await git(['add', '-A'], sub);
  await git(['commit', '--quiet', '-m', 'the submodule'], sub);
  await publish('sub', sub);

  const main = path.join(tmp, 'main');
  await git(['init', '--quiet', '--initial-branch', 'master', main], tmp);
  await fs.writeFile(path.join(main, 'main.bin'), mainPayload);
  // Added from its local path (git will not pass our CA to the clone it makes), then recorded as its https URL.
  await git(['-c', 'protocol.file.allow=always', 'submodule', 'add', '--quiet', sub, 'vendor/sub'], main);
  await git(['config', '-f', '.gitmodules', 'submodule.vendor/sub.url', `${server.url}/sub.git`], main);
  await git(['add', '-A'], main);
  await git(['commit', '--quiet', '-m', 'with a submodule over https'], main);
  withSub = await git(['rev-parse', 'HEAD'], main);
  await publish('main', main);
});
afterAll(async () => {
  await server.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

async function writeRecipe(tree: string, url: string, commit: string, submodules: boolean): Promise<string> {
  const dir = path.join(tmp, tree, 'subby');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(
    path.join(dir, 'recipe.yaml'),
    tinyRecipeText(
      'subby',
      'sources:',
      '  tree:',
      `    git: ${url}`,
      `    commit: ${commit}`,
      '    sha256: unverified',
      ...(submodules ? ['    submodules: true'] : []),
    ),
  );
  await fs.writeFile(
    path.join(dir, 'a.docker'),
    'FROM scratch\nARG SERVER_PORT\nRUN {{ source "tree" "/tree.tar" }}\n',
  );
  return dir;
}

const env = (extra: NodeJS.ProcessEnv = {}) => ({ GIT_SSL_CAINFO: server.caFile, ...extra });

async function fetched(dir: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const r = await runCli(['fetch', dir, '--cache', path.join(dir, '..', 'cache'), '--json'], { env: env(extraEnv) });
  expect(r.stderr).not.toMatch(/error/);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).sources[0] as { how: string; sha256: string; file: string };
}

/** Entries of a tarball: name, type, and a file's sha256. */
async function listing(file: string): Promise<string[]> {
  const out: string[] = [];
  const ex = tar.extract();
  ex.on('entry', (h, stream, next) => {
    const hash = createHash('sha256');
    stream.on('data', (b) => hash.update(b as Buffer));
    stream.on('end', () => {
      out.push(`${h.name} ${h.type}${h.type === 'file' ? ` ${hash.digest('hex')}` : ''}`);
      next();
    });
  });
  await pipeline(createReadStream(file), ex);
  return out;
}
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('git submodules', () => {
  it('declared: the submodule is fetched at the commit the superproject records, into the same deterministic tarball', async () => {
    const got = await fetched(await writeRecipe('defs-with', `${server.url}/main.git`, withSub, true));
    expect(got.how).toBe('fetched');
    expect(got.file.endsWith(`${withSub}-recursive.tar`)).toBe(true);
    const gitmodules = await fs.readFile(path.join(tmp, 'main', '.gitmodules'), 'utf8');
    expect(await listing(got.file)).toEqual([
      `.gitmodules file ${sha(gitmodules)}`,
      `main.bin file ${sha(mainPayload)}`,
      'vendor/ directory',
      'vendor/sub/ directory',
      `vendor/sub/sub.bin file ${sha(subPayload)}`,
    ]);
    // The same commit, another cache: the same bytes.
    expect((await fetched(await writeRecipe('defs-with-2', `${server.url}/main.git`, withSub, true))).sha256).toBe(
      got.sha256,
    );
  });

  it('not declared: the submodule is not fetched, its directory stays empty', async () => {
    const got = await fetched(await writeRecipe('defs-without', `${server.url}/main.git`, withSub, false));
    expect(got.file.endsWith(`${withSub}.tar`)).toBe(true);
    expect((await listing(got.file)).filter((l) => l.startsWith('vendor/'))).toEqual([
      'vendor/ directory',
      'vendor/sub/ directory',
    ]);
  });

  it('refuses, in one line, a submodule that is not on https, and keeps nothing', async () => {
    const local = path.join(tmp, 'local');
    await git(['init', '--quiet', '--initial-branch', 'master', local], tmp);
    await fs.writeFile(path.join(local, 'x'), 'x\n');
    await git(['add', '-A'], local);
    await git(['commit', '--quiet', '-m', 'x'], local);
    const main2 = path.join(tmp, 'main2');
    await git(['init', '--quiet', '--initial-branch', 'master', main2], tmp);
    await git(
      ['-c', 'protocol.file.allow=always', 'submodule', 'add', '--quiet', `file://${local}`, 'vendor/local'],
      main2,
    );
    await git(['commit', '--quiet', '-m', 'a submodule from a local path'], main2);
    const commit = await git(['rev-parse', 'HEAD'], main2);
    await publish('main2', main2);
    const dir = await writeRecipe('defs-file', `${server.url}/main2.git`, commit, true);
    const r = await runCli(['fetch', dir, '--cache', path.join(dir, '..', 'cache')], { env: env() });
    expect(r.code).toBe(3);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error:'));
    expect(lines).toEqual([
      `sifkit: error: ${server.url}/main2.git @ ${commit}: submodule "vendor/local" is at "file://${local}", not https: refused`,
    ]);
    const left = await fs.readdir(path.join(dir, '..', 'cache'), { recursive: true }).catch(() => []);
    expect(left.filter((f) => String(f).endsWith('.tar'))).toEqual([]);
  });
});

describe('a commit reachable only through a tag', () => {
  it('is found by the whole clone when the server will not give a commit by its id', async () => {
    const work = path.join(tmp, 'tagged');
    await git(['init', '--quiet', '--initial-branch', 'master', work], tmp);
    await fs.writeFile(path.join(work, 'v.txt'), `release ${SEED}\n`);
    await git(['add', '-A'], work);
    await git(['commit', '--quiet', '-m', 'the pinned release'], work);
    const pinned = await git(['rev-parse', 'HEAD'], work);
    await fs.writeFile(path.join(work, 'v.txt'), `release ${SEED} + 1\n`);
    await git(['commit', '--quiet', '-am', 'tagged on top'], work, '2026-01-02T00:00:00Z');
    await git(['tag', '-a', 'v1.0', '-m', 'v1.0'], work);
    const bare = await publish('tagged', work);
    await git(['push', '--quiet', bare, 'v1.0'], work);
    // master rewritten: only the tag's history holds the pin, and the pin is no ref's tip.
    await git(['checkout', '--quiet', '--orphan', 'other'], work);
    await git(['commit', '--quiet', '-am', 'rewritten'], work, '2026-02-01T00:00:00Z');
    await git(['push', '--quiet', '--force', bare, 'other:master'], work);
    expect(await git(['branch', '--contains', pinned], bare)).toBe('');
    expect(await git(['tag', '--contains', pinned], bare)).toBe('v1.0');

    // Protocol v0 (as an old server speaks): only advertised tips may be asked for by id.
    const v0 = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'protocol.version', GIT_CONFIG_VALUE_0: '0' };
    const seen = server.requests.length;
    const got = await fetched(await writeRecipe('defs-tag', `${server.url}/tagged.git`, pinned, false), v0);
    expect(await listing(got.file)).toEqual([`v.txt file ${sha(`release ${SEED}\n`)}`]);
    // Two fetches: the one by id, which ends at the refs (a v0 client does not ask for a commit no
    // ref advertises), then the whole clone of branches and tags, the one that gets a pack.
    expect(server.requests.slice(seen)).toEqual([
      'GET /tagged.git/info/refs?service=git-upload-pack',
      'GET /tagged.git/info/refs?service=git-upload-pack',
      'POST /tagged.git/git-upload-pack',
    ]);
    // Over protocol v2 the same commit comes by its id, as the same bytes.
    const v2 = await fetched(await writeRecipe('defs-tag-v2', `${server.url}/tagged.git`, pinned, false));
    expect(v2.sha256).toBe(got.sha256);

    // Without the tag the commit is nowhere: refused in one line.
    await git(['push', '--quiet', bare, ':refs/tags/v1.0'], work);
    const dir = await writeRecipe('defs-untagged', `${server.url}/tagged.git`, pinned, false);
    const r = await runCli(['fetch', dir, '--cache', path.join(dir, '..', 'cache')], { env: env(v0) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`has no commit ${pinned} (not fetchable by its id, nor in any branch or tag)`);
  });
});
