/**
 * The source cache: every declared source once, under a name made of its
 * pin (`sha256/<hex>`, `git/<commit>[-recursive].tar`), so two recipes or
 * versions that share a file share one copy. Partial downloads wait in
 * `partial/` to be resumed. `fetchSources` fills it (in parallel, with a
 * limit), `ensureSources` is what a build calls: the same, plus a check
 * of every cached file's digest, so a tampered file is refused before any
 * build step runs.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { OperationError, RefusedError, errnoCode } from '../errors';
import { commandLine } from '../emit/bash';
import type { ResolvedSource } from '../recipe/sources';
import { sourceKey } from '../recipe/sources';
import { fsyncPath, renameIntoPlace, sha256File } from '../util/files';
import { checkSourceUrl, downloadVerified, type DownloadOptions } from './download';
import { cloneToTarball } from './git';

/** `$SIFKIT_SOURCE_CACHE`, else `sources/` in sifkit's state directory (where scan verdicts live too). */
export function defaultSourceCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SIFKIT_SOURCE_CACHE) return path.resolve(env.SIFKIT_SOURCE_CACHE);
  const state =
    env.SIFKIT_STATE_DIR ?? path.join(env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state'), 'sifkit');
  return path.join(state, 'sources');
}

/** Where a source lives in the cache: its served path without the leading `sources/`. */
export function cachedFile(cache: string, src: ResolvedSource): string {
  return path.join(cache, ...src.servedPath.replace(/^sources\//, '').split('/'));
}

export interface FetchedSource {
  name: string;
  kind: ResolvedSource['kind'];
  url: string;
  sha256?: string;
  commit?: string;
  /** The cached file. */
  file: string;
  /** Served to builds under this path. */
  servedPath: string;
  bytes: number;
  /** 'cached': there already (no request made); 'fetched': downloaded or cloned now; 'copied': a local source. */
  how: 'cached' | 'fetched' | 'copied';
  requests: number;
  /** Bytes resumed from an earlier, cut download. */
  resumedFrom: number;
}

export interface FetchOptions {
  cache: string;
  /** Downloads at once (default 4). */
  jobs?: number;
  /** Refuse a source missing from the cache instead of fetching it. */
  offline?: boolean;
  signal: AbortSignal;
  /** Progress lines for stderr. */
  onProgress?: (line: string) => void;
  /** The recipe's directory, for the fetch command a hint names. */
  recipeDir?: string;
  /** Overrides of the download's time limits and retries (tests make them short). */
  download?: Pick<DownloadOptions, 'idleTimeoutMs' | 'retries' | 'backoffMs' | 'maxRedirects'>;
}

/** Sources that cannot be fetched as declared: refused before anything is downloaded. */
function refuseUnverified(list: readonly ResolvedSource[]): void {
  const bad = list.filter((s) => s.kind !== 'git' && !s.sha256);
  if (bad.length === 0) return;
  throw new RefusedError(
    'unverified-source',
    `source ${bad.map((s) => `${s.name} (${s.url})`).join(', ')} has no recorded sha256: not fetched`,
    {
      hint: 'find the digest its publisher gives (a release page, PyPI, Spack or EasyBuild) and record it under sources.NAME.sha256 in recipe.yaml; never the digest of a file you just downloaded',
    },
  );
}

/** Every URL checked (download.ts's checkSourceUrl) before anything is downloaded. */
function refuseBadUrls(list: readonly ResolvedSource[]): void {
  for (const s of list) if (s.kind !== 'local') checkSourceUrl(s.url, `source ${s.name}`);
}

const MiB = 1024 * 1024;
const human = (n: number) => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

/** The command that fills the cache for the recipe (every variant's sources), as a hint names it. */
function fetchCommandFor(opts: FetchOptions): string {
  return commandLine([
    'sifkit',
    'fetch',
    ...(opts.recipeDir ? [opts.recipeDir] : []),
    '--matrix',
    '--cache',
    opts.cache,
  ]);
}

/**
 * Checks a cached file against its pin; a mismatch is refused, naming the
 * file. Returns its size and digest (for a git source with no recorded
 * sha256, the digest of the tarball as cached, to report).
 */
async function verifyCached(
  file: string,
  src: ResolvedSource,
  signal: AbortSignal,
  fetchCommand: string,
): Promise<{ bytes: number; sha256: string }> {
  const got = await sha256File(file, signal);
  if (src.sha256 && got !== src.sha256) {
    throw new RefusedError(
      'tampered-source',
      `${file} (source ${src.name}, ${src.url}): sha256 mismatch: expected ${src.sha256}, got ${got}`,
      {
        hint: `the cached file changed after it was verified: ${commandLine(['rm', '--', file])}, then ${fetchCommand}`,
      },
    );
  }
  return { bytes: (await fs.stat(file)).size, sha256: got };
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile(),
    (e) => {
      if (errnoCode(e) === 'ENOENT') return false;
      throw e;
    },
  );
}

async function fetchOne(src: ResolvedSource, opts: FetchOptions): Promise<FetchedSource> {
  const file = cachedFile(opts.cache, src);
  const base = {
    name: src.name,
    kind: src.kind,
    url: src.url,
    sha256: src.sha256,
    commit: src.commit,
    file,
    servedPath: src.servedPath,
    requests: 0,
    resumedFrom: 0,
  };
  if (await exists(file))
    return { ...base, ...(await verifyCached(file, src, opts.signal, fetchCommandFor(opts))), how: 'cached' };
  if (opts.offline) {
    throw new RefusedError(
      'source-not-cached',
      `source ${src.name} (${src.url}) is not in the source cache ${opts.cache} and --offline forbids fetching it`,
      { hint: `on a host with network: ${fetchCommandFor(opts)}; or give --source-cache DIR` },
    );
  }
  const say = opts.onProgress ?? (() => undefined);
  const started = Date.now();
  if (src.kind === 'local') {
    // Shipped beside the recipe: checked on the way in like a download.
    const partial = path.join(opts.cache, 'partial', `${path.basename(file)}.part`);
    await fs.mkdir(path.dirname(partial), { recursive: true });
    await fs.mkdir(path.dirname(file), { recursive: true });
    const hash = createHash('sha256');
    await pipeline(
      createReadStream(src.file ?? ''),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          hash.update(c);
          yield c;
        }
      },
      (await fs.open(partial, 'w')).createWriteStream(),
    ).catch((e) => {
      throw new OperationError(
        'source-unreadable',
        `source ${src.name}: cannot read ${src.file} (${errnoCode(e) ?? (e as Error).message})`,
      );
    });
    const got = hash.digest('hex');
    if (got !== src.sha256) {
      await fs.rm(partial, { force: true });
      throw new RefusedError('checksum-mismatch', `${src.file}: sha256 mismatch: expected ${src.sha256}, got ${got}`);
    }
    await fsyncPath(partial);
    await renameIntoPlace(partial, file);
    return { ...base, bytes: (await fs.stat(file)).size, how: 'copied' };
  }
  if (src.kind === 'git') {
    say(`${src.name}: cloning ${src.url} at ${src.commit}${src.submodules ? ' with submodules' : ''}`);
    const got = await cloneToTarball({
      url: src.url,
      commit: src.commit ?? '',
      submodules: src.submodules,
      target: file,
      expectSha256: src.sha256,
      signal: opts.signal,
    });
    if (!src.sha256)
      say(
        `${src.name}: tarball of ${src.commit} has sha256 ${got.sha256}: record it as sources.${src.name}.sha256 to have it checked`,
      );
    return { ...base, sha256: got.sha256, bytes: got.bytes, how: 'fetched' };
  }
  // The first progress line after a second: a fast download says only that it is done.
  let last = started;
  const result = await downloadVerified({
    ...opts.download,
    url: src.url,
    sha256: src.sha256 ?? '',
    target: file,
    partial: path.join(opts.cache, 'partial', `${src.sha256}.part`),
    signal: opts.signal,
    onBytes: (bytes, total) => {
      const now = Date.now();
      if (now - last < 1000) return;
      last = now;
      const rate = bytes / Math.max(0.001, (now - started) / 1000);
      say(`${src.name}: ${human(bytes)}${total ? ` of ${human(total)}` : ''} at ${human(rate)}/s`);
    },
    onRetry: (reason, n, wait) => say(`${src.name}: ${reason}; retry ${n} in ${(wait / 1000).toFixed(1)} s`),
  });
  const secs = Math.max(0.001, (Date.now() - started) / 1000);
  say(
    `${src.name}: fetched ${human(result.bytes)} in ${secs.toFixed(1)} s (${human(result.bytes / secs)}/s)${result.resumedFrom ? `, resumed at ${human(result.resumedFrom)}` : ''}`,
  );
  return { ...base, bytes: result.bytes, how: 'fetched', requests: result.requests, resumedFrom: result.resumedFrom };
}

/**
 * Fills the cache with the given sources (each file once, however many
 * variants or names use it), at most `jobs` at a time. Unverified sources
 * are refused before any download starts; the first failure stops the
 * rest. Every declared name is in the answer: a name whose file another
 * name already brought is answered from the cache (`cached`, no request).
 */
export async function fetchSources(list: readonly ResolvedSource[], opts: FetchOptions): Promise<FetchedSource[]> {
  const named = [...new Map(list.map((s) => [`${s.name}\0${sourceKey(s)}`, s])).values()];
  // The first name of each file fetches it.
  const unique = named.filter((s, i) => named.findIndex((t) => sourceKey(t) === sourceKey(s)) === i);
  refuseBadUrls(list);
  refuseUnverified(unique);
  const out: FetchedSource[] = new Array(unique.length);
  let next = 0;
  let failed: Error | undefined;
  const worker = async () => {
    while (failed === undefined && next < unique.length) {
      const i = next++;
      try {
        out[i] = await fetchOne(unique[i], opts);
      } catch (e) {
        failed ??= e instanceof Error ? e : new Error(String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs ?? 4, unique.length)) }, worker));
  if (failed !== undefined) throw failed;
  const byKey = new Map(unique.map((s, i) => [sourceKey(s), out[i]]));
  return named.map((s) => {
    const got = byKey.get(sourceKey(s))!;
    if (got.name === s.name) return got;
    return { ...got, name: s.name, url: s.url, how: 'cached' as const, requests: 0, resumedFrom: 0 };
  });
}

/** What a build serves: each source's served path and cached file, checked now (fetched first unless offline). */
export async function ensureSources(
  list: readonly ResolvedSource[],
  opts: FetchOptions,
): Promise<Array<{ servedPath: string; file: string }>> {
  const got = await fetchSources(list, opts);
  return got.map((s) => ({ servedPath: s.servedPath, file: s.file }));
}
