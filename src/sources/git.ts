/**
 * A git source: cloned at its pinned commit (with submodules when
 * declared), then stored as a deterministic tarball of the tree, so the
 * cache holds one file with one digest like every other source. The
 * tarball has its entries sorted, owner 0:0, mtime 0, modes reduced to
 * 0755/0644, and no `.git`: the same commit gives the same bytes on any
 * host, on any day.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { OperationError, RefusedError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { fsyncPath, renameIntoPlace } from '../util/files';
import { runChild } from '../util/process';

export interface CloneOptions {
  url: string;
  commit: string;
  submodules: boolean;
  target: string;
  /** When recorded, the tarball must have this digest. */
  expectSha256?: string;
  signal: AbortSignal;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Every path under dir (files, links, directories), sorted, without any `.git`. */
async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await fs.readdir(path.join(dir, rel))).sort(byName)) {
    if (name === '.git') continue;
    const r = rel ? `${rel}/${name}` : name;
    out.push(r);
    const st = await fs.lstat(path.join(dir, r));
    if (st.isDirectory()) out.push(...(await walk(dir, r)));
  }
  return out;
}

/** Writes the deterministic tarball of dir to file; returns its sha256 and size. */
export async function treeTarball(
  dir: string,
  file: string,
  signal: AbortSignal,
): Promise<{ sha256: string; bytes: number }> {
  const pack = tar.pack();
  const hash = createHash('sha256');
  let bytes = 0;
  const written = pipeline(
    pack,
    new Transform({
      transform(chunk: Buffer, _e, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    }),
    createWriteStream(file),
    { signal },
  );
  const fixed = { uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) };
  for (const rel of await walk(dir)) {
    const abs = path.join(dir, rel);
    const st = await fs.lstat(abs);
    if (st.isDirectory()) pack.entry({ ...fixed, name: `${rel}/`, type: 'directory', mode: 0o755 });
    else if (st.isSymbolicLink())
      pack.entry({ ...fixed, name: rel, type: 'symlink', linkname: await fs.readlink(abs), mode: 0o777 });
    else if (st.isFile()) {
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry(
          { ...fixed, name: rel, type: 'file', size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 },
          (e) => (e ? reject(e) : resolve()),
        );
        createReadStream(abs).on('error', reject).pipe(entry);
      });
    }
  }
  pack.finalize();
  await written;
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Git's settings for every fetch, set here rather than left to git's
 * defaults or the user's config: https only (also for submodules and
 * redirects: git applies protocol.allow to both), certificates verified,
 * redirects followed only on the first request, no credential prompt.
 */
const SAFE_GIT = [
  '-c',
  'protocol.allow=never',
  '-c',
  'protocol.https.allow=always',
  '-c',
  'http.sslVerify=true',
  '-c',
  'http.followRedirects=initial',
  '-c',
  'advice.detachedHead=false',
  '-c',
  'init.defaultBranch=sifkit',
];

/** The submodules `.gitmodules` records at the pinned commit: name and URL (none when there is no such file). */
async function submoduleUrls(
  tree: string,
  git: (args: string[], cwd?: string) => Promise<string>,
): Promise<Array<{ name: string; url: string }>> {
  const there = await fs.stat(path.join(tree, '.gitmodules')).then(
    () => true,
    () => false,
  );
  if (!there) return [];
  // NUL-separated: a submodule's name may hold spaces or newlines.
  const out = await git(
    ['config', '--file', '.gitmodules', '--null', '--get-regexp', '^submodule\\..*\\.url$'],
    tree,
  ).catch(() => '');
  return out
    .split('\0')
    .filter((rec) => rec.includes('\n'))
    .map((rec) => {
      const [key, ...rest] = rec.split('\n');
      return { name: key.replace(/^submodule\./, '').replace(/\.url$/, ''), url: rest.join('\n') };
    });
}

/**
 * A submodule is fetched over https or not at all: refused here in one
 * line, before git tries (git's own refusal, through protocol.allow, names
 * neither the submodule nor why). A relative URL is resolved against the
 * source's own, as git does. Nested submodules are left to protocol.allow.
 */
function refuseNonHttps(opts: CloneOptions, subs: Array<{ name: string; url: string }>): void {
  for (const s of subs) {
    const relative = s.url.startsWith('./') || s.url.startsWith('../');
    const https = relative ? opts.url.startsWith('https://') : s.url.startsWith('https://');
    if (https) continue;
    throw new RefusedError(
      'unsafe-submodule',
      `${opts.url} @ ${opts.commit}: submodule ${escapeForMessage(s.name)} is at ${escapeForMessage(s.url, 200)}, not https: refused`,
      {
        hint: 'git sources and their submodules are fetched over https only: point the submodule at an https URL in a commit and pin that commit, or declare the source without submodules',
      },
    );
  }
}

/**
 * Fetches exactly the pinned commit, checks it out, checks it is the
 * commit, and publishes the tarball under `target`. The commit is asked
 * for by its id (one shallow fetch, as GitHub and git's protocol v2
 * serve), so a branch that moved on, or was force-pushed, since the pin
 * changes nothing; only a server that refuses fetches by id is cloned
 * whole (every branch and tag) and searched for it. A commit it does not
 * have is refused in one line.
 */
export async function cloneToTarball(opts: CloneOptions): Promise<{ sha256: string; bytes: number }> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-git-'));
  const git = (args: string[], cwd?: string) =>
    runChild('git', [...SAFE_GIT, ...args], {
      cwd,
      signal: opts.signal,
      label: `git ${args[0]}`,
      failCode: 'git-failed',
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
      missing: { code: 'no-git', hint: 'install git to fetch git sources' },
    });
  try {
    const tree = path.join(work, 'tree');
    await git(['init', '--quiet', tree]);
    const byId = await git(['fetch', '--quiet', '--depth', '1', '--no-tags', '--', opts.url, opts.commit], tree).then(
      () => true,
      (e: unknown) => {
        if (opts.signal.aborted) throw e;
        return false;
      },
    );
    if (!byId) {
      await git(
        [
          'fetch',
          '--quiet',
          '--no-tags',
          '--',
          opts.url,
          '+refs/heads/*:refs/sifkit/heads/*',
          '+refs/tags/*:refs/sifkit/tags/*',
        ],
        tree,
      );
      const there = await git(['rev-parse', '--verify', '--quiet', `${opts.commit}^{commit}`], tree).then(
        () => true,
        () => false,
      );
      if (!there)
        throw new OperationError(
          'git-commit-missing',
          `${opts.url} has no commit ${opts.commit} (not fetchable by its id, nor in any branch or tag)`,
          {
            hint: 'the pinned commit is gone upstream: find where it lives now (a fork, a mirror) and record that URL in the recipe; the commit stays',
          },
        );
    }
    await git(['checkout', '--quiet', '--detach', opts.commit], tree);
    const head = (await git(['rev-parse', 'HEAD'], tree)).trim();
    if (head !== opts.commit)
      throw new OperationError('git-failed', `${opts.url}: checked out ${head}, not the pinned ${opts.commit}`);
    if (opts.submodules) {
      refuseNonHttps(opts, await submoduleUrls(tree, git));
      await git(['submodule', '--quiet', 'update', '--init', '--recursive'], tree);
    }
    await fs.mkdir(path.dirname(opts.target), { recursive: true });
    const tmp = `${opts.target}.part-${process.pid}`;
    const got = await treeTarball(tree, tmp, opts.signal);
    if (opts.expectSha256 && got.sha256 !== opts.expectSha256) {
      await fs.rm(tmp, { force: true });
      throw new RefusedError(
        'checksum-mismatch',
        `${opts.url} @ ${opts.commit}: sha256 mismatch of the tree's tarball: expected ${opts.expectSha256}, got ${got.sha256}`,
      );
    }
    await fsyncPath(tmp);
    await renameIntoPlace(tmp, opts.target);
    return got;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
