/**
 * The pull request that ships a release: a branch from the default branch,
 * one commit with the EasyConfig, its Docker definition and USER.md (and
 * any archive moves), and a PR describing the image. Idempotent: the same
 * image updates its branch and PR instead of opening new ones. Talks to
 * the GitHub REST API through @octokit/rest; any server speaking the same
 * endpoints works (--api-url).
 */
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { RequestError } from '@octokit/request-error';
import { Octokit } from '@octokit/rest';
import { InputError, OperationError, RefusedError, isSifkitError, throwIfAborted } from '../errors';
import { escapeForMessage } from '../validate/names';

export interface PublishFile {
  path: string;
  content: string;
}

export interface PublishRequest {
  owner: string;
  repo: string;
  branch: string;
  title: string;
  body: string;
  message: string;
  files: PublishFile[];
  /** Paths moved, e.g. into __archive__ by retire: [from, to]. */
  moves?: Array<[string, string]>;
}

export interface PublishResult {
  branch: string;
  commit: string;
  committed: boolean;
  pr: { number: number; url: string; created: boolean };
}

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
    throw new InputError('bad-api-url', `--api-url ${escapeForMessage(text)} is not a URL`, { hint: `e.g. ${DEFAULT_API_URL}, or https://HOST/api/v3 for GitHub Enterprise` });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new InputError('bad-api-url', `--api-url ${escapeForMessage(text)} is not http(s)`);
  if (u.username || u.password) throw new InputError('bad-api-url', `--api-url must not carry a user or password`, { hint: 'the token goes in GITHUB_TOKEN' });
  if (u.search || u.hash) throw new InputError('bad-api-url', `--api-url ${escapeForMessage(text)} must not have a query or fragment`);
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\./.test(u.hostname);
  if (u.protocol === 'http:' && !loopback) throw new RefusedError('insecure-api-url', `--api-url ${escapeForMessage(text)} is plain http to another host: the token would cross the network in clear`, { hint: 'use https' });
  return u.toString().replace(/\/+$/, '');
}

/** What kind of network failure an error of fetch is, by its cause's code. */
export function networkKind(e: unknown): { kind: 'refused' | 'dns' | 'tls' | 'timeout' | 'reset' | 'network'; code?: string } {
  const err = e as { name?: string; code?: unknown; cause?: { code?: unknown; name?: string } };
  if (err?.name === 'TimeoutError') return { kind: 'timeout' };
  const code = typeof err?.cause?.code === 'string' ? err.cause.code : typeof err?.code === 'string' ? err.code : undefined;
  if (!code) return { kind: 'network' };
  if (code === 'ECONNREFUSED') return { kind: 'refused', code };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return { kind: 'dns', code };
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { kind: 'timeout', code };
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') return { kind: 'reset', code };
  if (/CERT|SSL|TLS|EPROTO/.test(code)) return { kind: 'tls', code };
  return { kind: 'network', code };
}

const NETWORK_WORDS = {
  refused: 'connection refused',
  dns: 'the host name does not resolve',
  tls: 'the TLS handshake failed',
  timeout: 'no answer in time',
  reset: 'the connection was dropped before the answer',
  network: 'network failure',
} as const;

/**
 * A request that got no answer. It is a RequestError so that Octokit
 * passes it on unchanged; a refused connection, a name that does not
 * resolve or a bad certificate will not mend by waiting, so they carry no
 * HTTP status and are never retried; a timeout or a dropped connection
 * carry 500 so that the retry plugin repeats them, where repeating is safe.
 */
export class GitHubNetworkError extends RequestError {
  constructor(readonly kind: keyof typeof NETWORK_WORDS, readonly host: string, readonly detail: string, method: string, url: string) {
    super(`${NETWORK_WORDS[kind]}: ${host}${detail ? ` (${detail})` : ''}`, kind === 'timeout' || kind === 'reset' ? 500 : 0, { request: { method: method as 'GET', url, headers: {}, request: {} } });
  }
}

/** fetch with an explicit time limit, whose failures say what they are and where. */
function fetchWithLimit(timeoutMs: number): typeof fetch {
  return async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const limit = AbortSignal.timeout(timeoutMs);
    const caller = init?.signal ?? undefined;
    try {
      return await fetch(input, { ...init, signal: caller ? AbortSignal.any([caller, limit]) : limit });
    } catch (e) {
      if (caller?.aborted) throw e; // Ctrl-C: Octokit passes AbortError on
      const { kind, code } = limit.aborted ? { kind: 'timeout' as const, code: `${timeoutMs / 1000} s` } : networkKind(e);
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      throw new GitHubNetworkError(kind, new URL(url).host, code ?? cause ?? '', init?.method ?? 'GET', url);
    }
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
  return (octokit: { hook: Octokit['hook'] }) => {
    octokit.hook.wrap('request', async (request, options) => {
      const r = options.request as { retryCount?: number; lastFailure?: string };
      if ((r.retryCount ?? 0) > 0) log?.(`GitHub ${options.method} ${options.url}: ${r.lastFailure ?? 'failed'}, retrying (attempt ${(r.retryCount ?? 0) + 1})`);
      try {
        return await request(options);
      } catch (e) {
        r.lastFailure = describe(e);
        throw e;
      }
    });
  };
}

export function client(opts: GitHubOptions): Octokit {
  const baseUrl = apiBase(opts.apiUrl ?? DEFAULT_API_URL);
  const base = opts.backoffMs ?? 1000;
  const retries = opts.retries ?? 3;
  const Client = Octokit.plugin(attemptLog(opts.log), retry, throttling);
  const onLimit = (kind: string) => (after: number, options: { method: string; url: string }, _o: unknown, count: number) => {
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
    throttle: { retryAfterBaseValue: base, onRateLimit: onLimit('rate limited'), onSecondaryRateLimit: onLimit('secondary rate limit') },
    log: { debug: () => undefined, info: () => undefined, warn: (m: string) => opts.log?.(m), error: (m: string) => opts.log?.(m) },
  });
  // Per request, on its own copy of the request options (the plugins keep
  // their counts there): only what is safe to repeat may be retried.
  octokit.hook.before('request', (options) => {
    const { retryCount: _c, lastFailure: _f, retries: _r, ...rest } = options.request as Record<string, unknown>;
    options.request = { ...rest, ...(repeatable(options.method, options.url) ? {} : { retries: 0 }) };
  });
  return octokit;
}

/** No answer, or a server error: the request may or may not have been applied. */
function outcomeUnknown(e: unknown): boolean {
  const s = status(e);
  return e instanceof GitHubNetworkError ? e.kind === 'timeout' || e.kind === 'reset' : s !== undefined && s >= 500;
}

/**
 * Sends a creating request once. When its outcome is unknown, `exists`
 * looks whether it was applied; only if not is it sent again, once.
 */
async function createOnce<T>(send: () => Promise<T>, exists: () => Promise<T | undefined>, log?: (l: string) => void): Promise<T> {
  try {
    return await send();
  } catch (e) {
    if (!outcomeUnknown(e)) throw e;
    const found = await exists();
    if (found !== undefined) {
      log?.(`GitHub: the answer was lost (${describe(e)}), but the request was applied`);
      return found;
    }
    log?.(`GitHub: the answer was lost (${describe(e)}) and the request was not applied; sending it again`);
    return send();
  }
}

/** One line per failure a user can act on; never the token. */
export function explain(e: unknown, owner: string, repo: string): Error {
  if (e instanceof GitHubNetworkError) {
    const hint = e.kind === 'tls' ? 'check the certificate of the server (or its CA in NODE_EXTRA_CA_CERTS)' : e.kind === 'dns' || e.kind === 'refused' ? 'check --api-url and the network' : 'GitHub or the network is slow or down; try again later';
    return new OperationError(`github-${e.kind}`, `GitHub cannot be reached: ${e.message}`, { hint, cause: e });
  }
  const s = status(e);
  const data = (e as { response?: { data?: { message?: unknown } } })?.response?.data;
  const msg = escapeForMessage(typeof data?.message === 'string' ? data.message : (e as Error)?.message ?? '', 200).slice(1, -1);
  switch (s) {
    case 401:
      return new InputError('github-401', 'GitHub refused the token (401 Bad credentials)', { hint: 'set GITHUB_TOKEN to a valid token' });
    case 403:
      if ((e as { response?: { headers?: Record<string, string> } }).response?.headers?.['x-ratelimit-remaining'] === '0') {
        return new OperationError('github-rate-limit', `GitHub's rate limit is used up (403: ${msg})`, { hint: 'wait until it resets (x-ratelimit-reset), or use another token' });
      }
      return new RefusedError('github-403', `GitHub forbids this for ${owner}/${repo} (403: ${msg})`, { hint: 'the token needs contents and pull requests write access to the repository' });
    case 404:
      return new InputError('github-404', `${owner}/${repo} not found, or the token cannot see it (404)`, { hint: 'check --repo and that the token has access' });
    case 422:
      return new InputError('github-422', `GitHub rejected the request (422: ${msg})`);
    case 429:
      return new OperationError('github-rate-limit', `GitHub's rate limit is used up (429: ${msg})`, { hint: 'wait, then run again' });
    default:
      return new OperationError('github-failed', `GitHub request failed${s ? ` (${s})` : ''}: ${msg}`);
  }
}

export async function publishPullRequest(req: PublishRequest, opts: GitHubOptions): Promise<PublishResult> {
  const gh = client(opts);
  const { owner, repo } = req;
  try {
    const { data: repository } = await gh.rest.repos.get({ owner, repo });
    const base = repository.default_branch;
    const { data: baseRef } = await gh.rest.git.getRef({ owner, repo, ref: `heads/${base}` });
    let head: string;
    try {
      const { data: branchRef } = await gh.rest.git.getRef({ owner, repo, ref: `heads/${req.branch}` });
      head = branchRef.object.sha;
    } catch (e) {
      if (status(e) !== 404) throw e;
      const branchNow = () => gh.rest.git.getRef({ owner, repo, ref: `heads/${req.branch}` }).then((r) => r.data.object.sha, (e2) => {
        if (status(e2) === 404) return undefined;
        throw e2;
      });
      head = await createOnce(
        () => gh.rest.git.createRef({ owner, repo, ref: `refs/heads/${req.branch}`, sha: baseRef.object.sha }).then((r) => r.data.object.sha),
        branchNow,
        opts.log,
      );
    }
    const { data: headCommit } = await gh.rest.git.getCommit({ owner, repo, commit_sha: head });
    const entries: Array<{ path: string; mode: '100644'; type: 'blob'; content?: string; sha?: string | null }> = req.files.map((f) => ({ path: f.path, mode: '100644', type: 'blob', content: f.content }));
    for (const [from, to] of req.moves ?? []) {
      const { data } = await gh.rest.repos.getContent({ owner, repo, path: from, ref: head }).catch((e) => {
        if (status(e) === 404) return { data: undefined };
        throw e;
      });
      const file = data as { sha?: string; type?: string } | undefined;
      if (!file?.sha || file.type !== 'file') continue; // moved already
      entries.push({ path: to, mode: '100644', type: 'blob', sha: file.sha }, { path: from, mode: '100644', type: 'blob', sha: null });
    }
    const { data: tree } = await gh.rest.git.createTree({ owner, repo, base_tree: headCommit.tree.sha, tree: entries as never });
    let commit = head;
    const committed = tree.sha !== headCommit.tree.sha;
    // Same tree as the branch already has: nothing to commit (a rerun).
    if (committed) {
      const { data: c } = await gh.rest.git.createCommit({ owner, repo, message: req.message, tree: tree.sha, parents: [head] });
      await gh.rest.git.updateRef({ owner, repo, ref: `heads/${req.branch}`, sha: c.sha });
      commit = c.sha;
    }
    const { data: open } = await gh.rest.pulls.list({ owner, repo, head: `${owner}:${req.branch}`, state: 'open' });
    if (open.length) {
      const pr = open[0];
      await gh.rest.pulls.update({ owner, repo, pull_number: pr.number, title: req.title, body: req.body });
      return { branch: req.branch, commit, committed, pr: { number: pr.number, url: pr.html_url, created: false } };
    }
    const pr = await createOnce(
      () => gh.rest.pulls.create({ owner, repo, title: req.title, head: req.branch, base, body: req.body }).then((r) => r.data),
      () => gh.rest.pulls.list({ owner, repo, head: `${owner}:${req.branch}`, state: 'open' }).then((r) => r.data[0]),
      opts.log,
    );
    return { branch: req.branch, commit, committed, pr: { number: pr.number, url: pr.html_url, created: true } };
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throwIfAborted(opts.signal);
    throw explain(e, owner, repo);
  }
}
