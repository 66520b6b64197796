/**
 * One verified download: streamed to a partial file beside the cache, its
 * sha256 taken as the bytes pass (sink.ts), resumed with an HTTP Range request after
 * a cut, retried with backoff on transient failures (never on a 4xx or a
 * wrong digest), published under its final name only once the digest is
 * the declared one. Every security-relevant option is set here, not left
 * to Node's defaults: TLS verification on, TLS 1.2 at least, redirects
 * followed by hand (at most `maxRedirects`, never from https to http, never
 * to another scheme), an idle time limit on every socket.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InputError, InterruptedError, OperationError, RefusedError, errnoCode } from '../errors';
import { escapeForMessage } from '../validate/names';
import { fsyncPath, renameIntoPlace } from '../util/files';
import { DigestingFileSink } from './sink';

export interface DownloadOptions {
  url: string;
  sha256: string;
  /** The final name (content-addressed); written only when the digest matches. */
  target: string;
  /** Where the bytes collect until then; kept across runs so a cut download resumes. */
  partial: string;
  signal: AbortSignal;
  /** Redirects followed (default 5). */
  maxRedirects?: number;
  /** A socket idle this long fails the attempt (default 30 s). */
  idleTimeoutMs?: number;
  /** Attempts after the first, on transient failures only (default 4). */
  retries?: number;
  /** First backoff; doubled per retry, at most 30 s (default 1 s). */
  backoffMs?: number;
  /** Progress: bytes in the partial file so far, and the total when the server said. */
  onBytes?: (bytes: number, total: number | undefined) => void;
  /** Said once per retry, with the reason (for the log). */
  onRetry?: (reason: string, attempt: number, waitMs: number) => void;
}

export interface DownloadResult {
  bytes: number;
  /** HTTP requests made, redirects included. */
  requests: number;
  /** Bytes that were already there when a Range request resumed the download (0 if none). */
  resumedFrom: number;
  /** The Content-Encoding the server sent although asked for none (its bytes are kept as sent, as curl keeps them). */
  encoding?: string;
}

/** Write errors of the cache's own disk: never transient. */
const CACHE_FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EIO']);

/** A failure worth another attempt (a cut connection, a 5xx, a timeout). */
class Transient extends Error {}

const USER_AGENT = 'sifkit-fetch';

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new InterruptedError('fetch interrupted'));
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new InterruptedError('fetch interrupted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Checks a source's URL (after its parameters are substituted) before
 * anything is fetched: http or https, no user name or password (they would
 * be written into the provenance and the logs, and `https://host@evil/`
 * names another host than it seems to), no fragment (never sent, so two
 * spellings would fetch one file), and written as its own normal form,
 * so the URL recorded is the URL fetched: no `.` or `..` segments, no
 * percent-encoded or upper-case host, no default port, an IDN host in its
 * ASCII (punycode) form, which shows a look-alike host for what it is.
 */
export function checkSourceUrl(url: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError('bad-source-url', `${what}: ${escapeForMessage(url)} is not a URL`);
  }
  const bad = (why: string, hint?: string): never => {
    throw new InputError('bad-source-url', `${what}: ${escapeForMessage(url, 200)} ${why}`, { hint });
  };
  if (u.protocol !== 'https:' && u.protocol !== 'http:') bad('is not http or https');
  if (u.username || u.password || /^[a-z]+:\/\/[^/]*@/i.test(url))
    bad('holds a user name or password: never in a recipe');
  if (u.hash || url.includes('#')) bad('has a fragment (#...), which is never sent: leave it out');
  const normal = u.href;
  if (url !== normal && !(u.pathname === '/' && `${url}/` === normal))
    bad(
      `is not written as the URL it fetches (${escapeForMessage(normal, 200)})`,
      'write the URL in that form in the recipe',
    );
  return u;
}

/** Opens a GET (following redirects by the rules above) and resolves with the final response. */
async function open(
  declared: URL,
  headers: Record<string, string>,
  opts: DownloadOptions,
  count: () => void,
): Promise<http.IncomingMessage> {
  let url = declared;
  for (let hop = 0; ; hop++) {
    count();
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const common: http.RequestOptions = {
        method: 'GET',
        headers: { 'User-Agent': USER_AGENT, 'Accept-Encoding': 'identity', ...headers },
        signal: opts.signal,
        timeout: opts.idleTimeoutMs ?? 30_000,
        agent: false,
      };
      const req =
        url.protocol === 'https:'
          ? https.request(url, { ...common, rejectUnauthorized: true, minVersion: 'TLSv1.2' })
          : http.request(url, common);
      req.on('timeout', () =>
        req.destroy(new Transient(`no answer from ${url.host} for ${(opts.idleTimeoutMs ?? 30_000) / 1000} s`)),
      );
      req.on('response', resolve);
      req.on('error', reject);
      req.end();
    });
    const status = res.statusCode ?? 0;
    if (status < 300 || status >= 400 || status === 304) return res;
    res.resume();
    const location = res.headers.location;
    if (!location) throw new OperationError('fetch-failed', `${url.href}: redirect ${status} without a Location`);
    if (hop >= (opts.maxRedirects ?? 5))
      throw new OperationError('fetch-failed', `${declared.href}: more than ${opts.maxRedirects ?? 5} redirects`);
    const next = new URL(location, url);
    // Only ever to https, or to http when the declared URL itself is http.
    const allowed = next.protocol === 'https:' || (next.protocol === 'http:' && declared.protocol === 'http:');
    if (!allowed)
      throw new RefusedError(
        'unsafe-redirect',
        `${declared.href}: redirected to ${next.protocol}//${next.host}, refused (only https, or http when the declared URL is http)`,
      );
    url = next;
  }
}

/** Feeds what a partial file already holds to the digest. */
async function hashInto(hash: Hash, file: string): Promise<void> {
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

async function sizeOf(file: string): Promise<number> {
  return fs.stat(file).then(
    (s) => s.size,
    (e) => {
      if (errnoCode(e) === 'ENOENT') return 0;
      throw e;
    },
  );
}

/** One attempt: resumes from the partial file when there is one. Returns the digest of the whole file. */
async function attempt(opts: DownloadOptions, declared: URL, result: DownloadResult): Promise<string> {
  let offset = await sizeOf(opts.partial);
  const hash = createHash('sha256');
  const res = await open(
    declared,
    offset > 0 ? { Range: `bytes=${offset}-` } : {},
    opts,
    () => result.requests++,
  ).catch((e) => {
    if (opts.signal.aborted) throw new InterruptedError('fetch interrupted');
    if (e instanceof OperationError || e instanceof RefusedError || e instanceof Transient) throw e;
    // TLS failures are not transient: a certificate will not become valid by waiting.
    const code = errnoCode(e) ?? '';
    if (/CERT|SSL|TLS|SELF_SIGNED/.test(code)) throw new RefusedError('tls', `${opts.url}: TLS refused (${code})`);
    throw new Transient(`${(e as Error).message}`);
  });
  const status = res.statusCode ?? 0;
  if (status === 416 && offset > 0) {
    // The partial file already holds every byte (or more): judge it as it is.
    res.resume();
    await hashInto(hash, opts.partial);
    return hash.digest('hex');
  }
  if (status >= 500 || status === 408 || status === 429) {
    res.resume();
    throw new Transient(`${opts.url}: HTTP ${status}`);
  }
  if (status !== 200 && status !== 206) {
    res.resume();
    throw new OperationError('fetch-failed', `${opts.url}: HTTP ${status}`, {
      hint:
        status === 404
          ? 'the file moved or is gone: find its new URL and record it in the recipe (the sha256 stays)'
          : undefined,
    });
  }
  const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
  if (status === 206 && range && Number(range[1]) === offset) {
    result.resumedFrom = offset;
    await hashInto(hash, opts.partial);
  } else {
    // A whole answer (200, or a 206 not starting where we stopped): start again.
    offset = 0;
  }
  const encoding = res.headers['content-encoding'];
  if (encoding && encoding !== 'identity') result.encoding = encoding;
  const length = Number(res.headers['content-length'] ?? NaN);
  const total = Number.isFinite(length) ? offset + length : undefined;
  let got = offset;
  const out = await fs.open(opts.partial, offset > 0 ? 'a' : 'w');
  try {
    await pipeline(
      res,
      new DigestingFileSink(out, hash, (n) => {
        // Counted whether or not anyone listens: the cut check below reads it.
        got += n;
        opts.onBytes?.(got, total);
      }),
    );
  } catch (e) {
    if (opts.signal.aborted) throw new InterruptedError('fetch interrupted');
    const code = errnoCode(e);
    if (code !== undefined && CACHE_FULL.has(code)) {
      // The cache's disk, not the network: waiting will not help, and the partial file is what filled it.
      await out.close().catch(() => undefined);
      await fs.rm(opts.partial, { force: true });
      throw new OperationError(
        'cache-write-failed',
        `${opts.url}: cannot write to ${path.dirname(opts.partial)} after ${got} bytes (${code}); nothing was kept`,
        { hint: 'free space in the source cache (or give --cache DIR on a larger disk) and run fetch again' },
      );
    }
    throw new Transient(`${opts.url}: cut after ${got} bytes (${(e as Error).message})`);
  } finally {
    await out.close().catch(() => undefined);
  }
  // Node ends the stream quietly when a server closes early without chunked framing.
  if (total !== undefined && got < total) throw new Transient(`${opts.url}: cut after ${got} of ${total} bytes`);
  return hash.digest('hex');
}

/**
 * Downloads `url` to `target`, checked against `sha256`. A wrong digest is
 * refused in one line naming the URL and both digests, and leaves nothing
 * (neither the partial nor the final file).
 */
export async function downloadVerified(opts: DownloadOptions): Promise<DownloadResult> {
  const declared = new URL(opts.url);
  if (declared.protocol !== 'https:' && declared.protocol !== 'http:')
    throw new RefusedError('bad-source-url', `${opts.url}: only http and https are fetched`);
  await fs.mkdir(path.dirname(opts.partial), { recursive: true });
  await fs.mkdir(path.dirname(opts.target), { recursive: true });
  const result: DownloadResult = { bytes: 0, requests: 0, resumedFrom: 0 };
  const retries = opts.retries ?? 4;
  for (let n = 0; ; n++) {
    let digest: string;
    try {
      digest = await attempt(opts, declared, result);
    } catch (e) {
      if (!(e instanceof Transient) || n >= retries) {
        if (e instanceof Transient)
          throw new OperationError('fetch-failed', `${e.message} (gave up after ${n + 1} attempts)`);
        throw e;
      }
      const wait = Math.min(30_000, (opts.backoffMs ?? 1000) * 2 ** n);
      opts.onRetry?.(e.message, n + 1, wait);
      await sleep(wait, opts.signal);
      continue;
    }
    if (digest !== opts.sha256) {
      await fs.rm(opts.partial, { force: true });
      throw new RefusedError(
        'checksum-mismatch',
        `${opts.url}: sha256 mismatch: expected ${opts.sha256}, got ${digest}`,
        {
          hint: result.encoding
            ? `the server sent it with Content-Encoding ${result.encoding} (asked for none): the digest is of the bytes as sent, as curl saves them; nothing was kept`
            : 'the file is not the one the recipe pins: nothing was kept; if upstream changed it on purpose, check why before recording a new digest',
        },
      );
    }
    result.bytes = await sizeOf(opts.partial);
    // Most of the file is on disk already (the sink flushes as it goes): this fsync waits for the rest.
    await fsyncPath(opts.partial);
    await renameIntoPlace(opts.partial, opts.target);
    return result;
  }
}
