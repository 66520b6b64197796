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
import { fsyncPath, publishTemp } from '../util/files';
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

/** Clones, checks out the commit, checks it is the commit, and publishes the tarball under `target`. */
export async function cloneToTarball(opts: CloneOptions): Promise<{ sha256: string; bytes: number }> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-git-'));
  const git = (args: string[], cwd?: string) =>
    runChild('git', args, {
      cwd,
      signal: opts.signal,
      label: `git ${args[0]}`,
      failCode: 'git-failed',
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
      missing: { code: 'no-git', hint: 'install git to fetch git sources' },
    });
  try {
    const tree = path.join(work, 'tree');
    // No checkout of whatever the default branch is now: only the pinned commit.
    await git(['-c', 'protocol.file.allow=never', 'clone', '--no-checkout', '--', opts.url, tree]);
    await git(['-c', 'advice.detachedHead=false', 'checkout', '--detach', opts.commit], tree);
    const head = (await git(['rev-parse', 'HEAD'], tree)).trim();
    if (head !== opts.commit)
      throw new OperationError('git-failed', `${opts.url}: checked out ${head}, not the pinned ${opts.commit}`);
    if (opts.submodules)
      await git(['-c', 'protocol.file.allow=never', 'submodule', 'update', '--init', '--recursive'], tree);
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
    await publishTemp(tmp, opts.target);
    return got;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
