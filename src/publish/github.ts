/**
 * The pull request that ships a release: a branch from the default branch,
 * one commit with the EasyConfig, its Docker definition and USER.md (and
 * any archive moves), and a PR describing the image. Idempotent: the same
 * image updates its branch and PR instead of opening new ones. Talks to
 * the GitHub REST API through @octokit/rest; any server speaking the same
 * endpoints works (--api-url).
 */
import { Octokit } from '@octokit/rest';
import { InputError, OperationError, RefusedError } from '../errors';

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
  /** Retries of 5xx and rate limits, and the first backoff (doubled each time). */
  retries?: number;
  backoffMs?: number;
  log?: (line: string) => void;
}

function status(e: unknown): number | undefined {
  const s = (e as { status?: unknown })?.status;
  return typeof s === 'number' ? s : undefined;
}

function headerOf(e: unknown, name: string): string | undefined {
  const h = (e as { response?: { headers?: Record<string, string> } })?.response?.headers;
  return h?.[name];
}

function rateLimited(e: unknown): boolean {
  const s = status(e);
  return s === 429 || (s === 403 && (headerOf(e, 'x-ratelimit-remaining') === '0' || headerOf(e, 'retry-after') !== undefined));
}

/** How long GitHub asks us to wait, capped: retry-after, else the rate limit reset. */
function waitHint(e: unknown, fallback: number): number {
  const after = Number(headerOf(e, 'retry-after'));
  if (after > 0) return Math.min(after * 1000, 60_000);
  const reset = Number(headerOf(e, 'x-ratelimit-reset'));
  if (reset > 0) return Math.min(Math.max(0, reset * 1000 - Date.now()), 60_000);
  return fallback;
}

/** One line per failure a user can act on; never the token. */
export function explain(e: unknown, owner: string, repo: string): Error {
  const s = status(e);
  const msg = ((e as { response?: { data?: { message?: string } } })?.response?.data?.message ?? (e as Error)?.message ?? '').split('\n')[0];
  switch (s) {
    case 401:
      return new InputError('github-401', 'GitHub refused the token (401 Bad credentials)', { hint: 'set GITHUB_TOKEN to a valid token' });
    case 403:
      return new RefusedError('github-403', `GitHub forbids this for ${owner}/${repo} (403: ${msg})`, { hint: 'the token needs contents and pull requests write access to the repository' });
    case 404:
      return new InputError('github-404', `${owner}/${repo} not found, or the token cannot see it (404)`, { hint: 'check --repo and that the token has access' });
    case 422:
      return new InputError('github-422', `GitHub rejected the request (422: ${msg})`);
    default:
      return new OperationError('github-failed', `GitHub request failed${s ? ` (${s})` : ''}: ${msg}`);
  }
}

export function client(opts: GitHubOptions): Octokit {
  const octokit = new Octokit({ auth: opts.token, baseUrl: opts.apiUrl, userAgent: 'sifkit', request: { retries: 0 } });
  const retries = opts.retries ?? 4;
  const backoff = opts.backoffMs ?? 1000;
  // Retries in one place: server errors and rate limits, with backoff.
  octokit.hook.wrap('request', async (request, options) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(options);
      } catch (e) {
        const s = status(e);
        const transient = (s !== undefined && s >= 500) || rateLimited(e) || s === undefined;
        if (!transient || attempt >= retries) throw e;
        const wait = rateLimited(e) ? waitHint(e, backoff * 2 ** attempt) : backoff * 2 ** attempt;
        opts.log?.(`GitHub ${options.method} ${options.url}: ${s ?? 'no answer'}, retrying in ${(wait / 1000).toFixed(1)} s`);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  });
  return octokit;
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
      await gh.rest.git.createRef({ owner, repo, ref: `refs/heads/${req.branch}`, sha: baseRef.object.sha });
      head = baseRef.object.sha;
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
    const { data: pr } = await gh.rest.pulls.create({ owner, repo, title: req.title, head: req.branch, base, body: req.body });
    return { branch: req.branch, commit, committed, pr: { number: pr.number, url: pr.html_url, created: true } };
  } catch (e) {
    if (e instanceof InputError || e instanceof RefusedError || e instanceof OperationError) throw e;
    throw explain(e, owner, repo);
  }
}
