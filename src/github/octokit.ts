/**
 * The one real PullRequestHost: GitHub's REST API through @octokit/rest.
 * Any server speaking the same endpoints works (--api-url). Every setting
 * that matters for safety is explicit here: the API URL is checked before
 * any request, each request has a time limit, creating POSTs are never
 * retried blindly, rate limits are waited out only when they reset soon,
 * and failures become HostFailures that never carry the token.
 */
import type * as Retry from '@octokit/plugin-retry';
import type * as Throttling from '@octokit/plugin-throttling';
import { RequestError } from '@octokit/request-error';
import type * as Rest from '@octokit/rest';
import { InputError, RefusedError } from '../errors';
import type { z } from 'zod';
import { escapeForMessage } from '../validate/names';
import { formatIssue } from '../validate/schema';
import {
  commitAnswer,
  contentAnswer,
  createdAnswer,
  pullAnswer,
  pullListAnswer,
  refAnswer,
  repoAnswer,
} from '../validate/schemas/github';
import {
  HostFailure,
  NETWORK_WORDS,
  type FailureKind,
  type NetworkKind,
  type PullRequestHost,
  type RepoRef,
} from './host';

export interface GitHubOptions {
  token: string;
  apiUrl?: string;
  /** Retries of server errors and of requests that got no answer (safe ones only). */
  retries?: number;
  /** The retry plugins' unit of waiting: 1000 means their waits are in seconds (as GitHub's headers). */
  backoffMs?: number;
  /** Each request's limit; never the platform's default. */
  timeoutMs?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export const DEFAULT_API_URL = 'https://api.github.com';
const DEFAULT_TIMEOUT_MS = 30_000;
/** A rate limit that resets later than this is reported, not waited out. */
const MAX_RATE_WAIT_S = 120;

function status(e: unknown): number | undefined {
  const s = (e as { status?: unknown })?.status;
  return typeof s === 'number' ? s : undefined;
}

/**
 * The API base URL, checked before any request: http(s) only, no user
 * or password in it (they would be sent to whoever answers), and plain
 * http only to this machine, so the token never crosses a network in clear.
 */
export function apiBase(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new InputError('bad-api-url', `--api-url ${escapeForMessage(text)} is not a URL`, {
      hint: `e.g. ${DEFAULT_API_URL}, or https://HOST/api/v3 for GitHub Enterprise`,
    });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new InputError('bad-api-url', `--api-url ${escapeForMessage(text)} is not http(s)`);
  if (u.username || u.password)
    throw new InputError('bad-api-url', `--api-url must not carry a user or password`, {
      hint: 'the token goes in GITHUB_TOKEN',
    });
  if (u.search || u.hash)
    throw new InputError('bad-api-url', `--api-url ${escapeForMessage(text)} must not have a query or fragment`);
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\./.test(u.hostname);
  if (u.protocol === 'http:' && !loopback)
    throw new RefusedError(
      'insecure-api-url',
      `--api-url ${escapeForMessage(text)} is plain http to another host: the token would cross the network in clear`,
      { hint: 'use https' },
    );
  return u.toString().replace(/\/+$/, '');
}

/** What kind of network failure an error of fetch is, by its cause's code. */
export function networkKind(e: unknown): { kind: NetworkKind; code?: string } {
  const err = e as { name?: string; code?: unknown; cause?: { code?: unknown; name?: string } };
  if (err?.name === 'TimeoutError') return { kind: 'timeout' };
  const code =
    typeof err?.cause?.code === 'string' ? err.cause.code : typeof err?.code === 'string' ? err.code : undefined;
  if (!code) return { kind: 'network' };
  if (code === 'ECONNREFUSED') return { kind: 'refused', code };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return { kind: 'dns', code };
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'ETIMEDOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  )
    return { kind: 'timeout', code };
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED')
    return { kind: 'reset', code };
  if (/CERT|SSL|TLS|EPROTO/.test(code)) return { kind: 'tls', code };
  return { kind: 'network', code };
}

/**
 * A request that got no answer. It is a RequestError so that Octokit
 * passes it on unchanged; a refused connection, a name that does not
 * resolve or a bad certificate will not mend by waiting, so they carry no
 * HTTP status and are never retried; a timeout or a dropped connection
 * carry 500 so that the retry plugin repeats them, where repeating is safe.
 */
export class GitHubNetworkError extends RequestError {
  constructor(
    readonly kind: NetworkKind,
    readonly host: string,
    readonly detail: string,
    method: string,
    url: string,
  ) {
    super(
      `${NETWORK_WORDS[kind]}: ${host}${detail ? ` (${detail})` : ''}`,
      kind === 'timeout' || kind === 'reset' ? 500 : 0,
      { request: { method: method as 'GET', url, headers: {}, request: {} } },
    );
  }
}

/** fetch with an explicit time limit, whose failures say what they are and where. */
function fetchWithLimit(timeoutMs: number): typeof fetch {
  return async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const limit = AbortSignal.timeout(timeoutMs);
    const caller = init?.signal ?? undefined;
    let res: Response;
    try {
      // Redirects are not followed: the token would be sent wherever they point.
      res = await fetch(input, {
        ...init,
        redirect: 'manual',
        signal: caller ? AbortSignal.any([caller, limit]) : limit,
      });
    } catch (e) {
      if (caller?.aborted) throw e; // Ctrl-C: Octokit passes AbortError on
      const { kind, code } = limit.aborted
        ? { kind: 'timeout' as const, code: `${timeoutMs / 1000} s` }
        : networkKind(e);
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      throw new GitHubNetworkError(kind, new URL(url).host, code ?? cause ?? '', init?.method ?? 'GET', url);
    }
    // GitHub answers 301 for a renamed repository; Octokit would take the empty answer for data.
    if (res.status >= 300 && res.status < 400 && res.status !== 304) {
      await res.body?.cancel();
      const where = res.headers.get('location');
      const message = `moved${where ? ` to ${where}` : ''}`; // escaped by failureOf
      throw new RequestError(message, res.status, {
        request: { method: (init?.method ?? 'GET') as 'GET', url, headers: {}, request: {} },
        response: { status: res.status, url, headers: {}, data: { message } },
      });
    }
    return res;
  };
}

/**
 * POSTs that create something (a branch, a pull request) are never
 * repeated blindly: when their outcome is unknown, publishPullRequest
 * looks whether the thing now exists. Creating a git tree or commit
 * twice is harmless (they are named by their content).
 */
function repeatable(method: string, url: string): boolean {
  if (method !== 'POST') return true;
  return /\/git\/(trees|commits)$/.test(url);
}

function describe(e: unknown): string {
  return e instanceof GitHubNetworkError ? NETWORK_WORDS[e.kind] : String(status(e) ?? 'no answer');
}

/**
 * Innermost hook (registered before the retry and throttling plugins):
 * sees every attempt, so it can say when one is a retry and why.
 */
function attemptLog(log: ((line: string) => void) | undefined) {
  return (octokit: { hook: Rest.Octokit['hook'] }) => {
    octokit.hook.wrap('request', async (request, options) => {
      const r = options.request as { retryCount?: number; lastFailure?: string };
      if ((r.retryCount ?? 0) > 0)
        log?.(
          `GitHub ${options.method} ${options.url}: ${r.lastFailure ?? 'failed'}, retrying (attempt ${(r.retryCount ?? 0) + 1})`,
        );
      try {
        return await request(options);
      } catch (e) {
        r.lastFailure = describe(e);
        throw e;
      }
    });
  };
}

function client(opts: GitHubOptions): Rest.Octokit {
  const baseUrl = apiBase(opts.apiUrl ?? DEFAULT_API_URL);
  const base = opts.backoffMs ?? 1000;
  const retries = opts.retries ?? 3;
  // Octokit and its plugins take a tenth of a second to load: only a command that talks to GitHub loads them.
  const { Octokit } = require('@octokit/rest') as typeof Rest;
  const { retry } = require('@octokit/plugin-retry') as typeof Retry;
  const { throttling } = require('@octokit/plugin-throttling') as typeof Throttling;
  const Client = Octokit.plugin(attemptLog(opts.log), retry, throttling);
  const onLimit =
    (kind: string) => (after: number, options: { method: string; url: string }, _o: unknown, count: number) => {
      if (count >= retries || after > MAX_RATE_WAIT_S) return false;
      opts.log?.(`GitHub ${options.method} ${options.url}: ${kind}, retrying in ${after} s`);
      return true;
    };
  const octokit = new Client({
    auth: opts.token,
    baseUrl,
    userAgent: 'sifkit',
    request: { fetch: fetchWithLimit(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS), signal: opts.signal },
    retry: { retries, retryAfterBaseValue: base },
    throttle: {
      retryAfterBaseValue: base,
      onRateLimit: onLimit('rate limited'),
      onSecondaryRateLimit: onLimit('secondary rate limit'),
    },
    log: {
      debug: () => undefined,
      info: () => undefined,
      warn: (m: string) => opts.log?.(m),
      error: (m: string) => opts.log?.(m),
    },
  });
  // Per request, on its own copy of the request options (the plugins keep
  // their counts there): only what is safe to repeat may be retried.
  octokit.hook.before('request', (options) => {
    const { retryCount: _c, lastFailure: _f, retries: _r, ...rest } = options.request as Record<string, unknown>;
    options.request = { ...rest, ...(repeatable(options.method, options.url) ? {} : { retries: 0 }) };
  });
  return octokit;
}

/** Octokit's error, as a HostFailure: by network kind or HTTP status, never by message text. */
export function failureOf(e: unknown): HostFailure {
  if (e instanceof HostFailure) return e;
  if (e instanceof GitHubNetworkError) {
    return new HostFailure(e.kind === 'timeout' || e.kind === 'reset' ? 'no-answer' : 'unreachable', e.message, {
      network: e.kind,
      cause: e,
    });
  }
  const s = status(e);
  const data = (e as { response?: { data?: { message?: unknown } } })?.response?.data;
  const message = escapeForMessage(
    typeof data?.message === 'string' ? data.message : ((e as Error)?.message ?? ''),
    200,
  ).slice(1, -1);
  const limited =
    (e as { response?: { headers?: Record<string, string> } }).response?.headers?.['x-ratelimit-remaining'] === '0';
  const kind: FailureKind =
    s === 401
      ? 'unauthorized'
      : s === 403
        ? limited
          ? 'rate-limited'
          : 'forbidden'
        : s === 404
          ? 'not-found'
          : s === 409
            ? 'conflict'
            : s === 422
              ? 'rejected'
              : s === 429
                ? 'rate-limited'
                : s !== undefined && s >= 300 && s < 400
                  ? 'moved'
                  : s !== undefined && s >= 500
                    ? 'server'
                    : 'failed';
  return new HostFailure(kind, message, { status: s, cause: e });
}

/** Runs one API call; its failure leaves as a HostFailure. */
async function call<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (e) {
    throw failureOf(e);
  }
}

/** A lookup whose 404 is an answer ("not there"), not a failure. */
async function lookup<T>(request: () => Promise<T>): Promise<T | undefined> {
  try {
    return await request();
  } catch (e) {
    if (status(e) === 404) return undefined;
    throw failureOf(e);
  }
}

/** An answer's data checked against its schema: one the API does not document is a failure, not data. */
function checked<S extends z.ZodType>(schema: S, what: string) {
  return (r: { data: unknown }): z.output<S> => {
    const p = schema.safeParse(r.data);
    if (p.success) return p.data;
    throw new HostFailure('bad-answer', formatIssue(p.error.issues[0], r.data, `the answer to ${what}`));
  };
}

/** The host for one run: one client, its token, API URL and signal. */
export function octokitHost(opts: GitHubOptions): PullRequestHost {
  const gh = client(opts);
  const pullInfo = (p: z.output<typeof pullAnswer>) => ({
    number: p.number,
    url: p.html_url,
    title: p.title,
    body: p.body ?? '',
  });
  return {
    defaultBranch: ({ owner, repo }) =>
      call(() => gh.rest.repos.get({ owner, repo }))
        .then(checked(repoAnswer, 'GET repository'))
        .then((r) => r.default_branch),
    branchHead: ({ owner, repo }, branch) =>
      lookup(() => gh.rest.git.getRef({ owner, repo, ref: `heads/${branch}` })).then(
        (r) => r && checked(refAnswer, 'GET ref')(r).object.sha,
      ),
    createBranch: ({ owner, repo }, branch, sha) =>
      call(() => gh.rest.git.createRef({ owner, repo, ref: `refs/heads/${branch}`, sha }))
        .then(checked(refAnswer, 'POST ref'))
        .then((r) => r.object.sha),
    commitTree: ({ owner, repo }, commit) =>
      call(() => gh.rest.git.getCommit({ owner, repo, commit_sha: commit }))
        .then(checked(commitAnswer, 'GET commit'))
        .then((r) => r.tree.sha),
    fileSha: async ({ owner, repo }, path, ref) => {
      const r = await lookup(() => gh.rest.repos.getContent({ owner, repo, path, ref }));
      const file = r && checked(contentAnswer, 'GET contents')(r);
      return file && !Array.isArray(file) && file.type === 'file' ? file.sha : undefined;
    },
    createTree: ({ owner, repo }, baseTree, entries) => {
      const tree = entries.map((t) => ({
        path: t.path,
        mode: '100644' as const,
        type: 'blob' as const,
        ...(t.content !== undefined ? { content: t.content } : { sha: t.sha ?? null }),
      }));
      return call(() => gh.rest.git.createTree({ owner, repo, base_tree: baseTree, tree: tree as never }))
        .then(checked(createdAnswer, 'POST tree'))
        .then((r) => r.sha);
    },
    createCommit: ({ owner, repo }, c) =>
      call(() => gh.rest.git.createCommit({ owner, repo, ...c }))
        .then(checked(createdAnswer, 'POST commit'))
        .then((r) => r.sha),
    moveBranch: async ({ owner, repo }, branch, sha) => {
      await call(() => gh.rest.git.updateRef({ owner, repo, ref: `heads/${branch}`, sha, force: false }));
    },
    findPullRequest: ({ owner, repo }: RepoRef, head) =>
      call(() => gh.rest.pulls.list({ owner, repo, head: `${owner}:${head}`, state: 'open' }))
        .then(checked(pullListAnswer, 'GET pulls'))
        .then((l) => (l.length ? pullInfo(l[0]) : undefined)),
    openPullRequest: ({ owner, repo }, pr) =>
      call(() => gh.rest.pulls.create({ owner, repo, ...pr }))
        .then(checked(pullAnswer, 'POST pull'))
        .then(pullInfo),
    updatePullRequest: async ({ owner, repo }, number, pr) => {
      await call(() => gh.rest.pulls.update({ owner, repo, pull_number: number, ...pr }));
    },
  };
}
