/**
 * The pull request that ships a release: a branch from the default branch,
 * one commit with the EasyConfig, its Docker definition and USER.md (and
 * any archive moves), and a PR describing the image. Idempotent: the same
 * image updates its branch and PR instead of opening new ones, and a rerun
 * with the same files changes nothing. Pure orchestration over a
 * PullRequestHost (github/octokit.ts is the real one).
 */
import { InputError, OperationError, RefusedError, isSifkitError, throwIfAborted, type SifkitError } from '../errors';
import {
  NETWORK_WORDS,
  type HostFailure,
  isHostFailure,
  type PullRequestHost,
  type RepoRef,
  type TreeEntry,
} from './host';

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

export interface PublishOptions {
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** What a failure was, in a log line's words. */
function describe(f: HostFailure): string {
  return f.network ? NETWORK_WORDS[f.network] : String(f.status ?? 'no answer');
}

/** No answer, or a server error: the request may or may not have been applied. */
function outcomeUnknown(e: unknown): e is HostFailure {
  return isHostFailure(e) && (e.kind === 'no-answer' || e.kind === 'server');
}

/**
 * Sends a creating request once. When its outcome is unknown, `exists`
 * looks whether it was applied; only if not is it sent again, once.
 */
async function createOnce<T>(
  send: () => Promise<T>,
  exists: () => Promise<T | undefined>,
  log?: (l: string) => void,
): Promise<T> {
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

const NETWORK_HINTS = {
  tls: 'check the certificate of the server (or its CA in NODE_EXTRA_CA_CERTS)',
  dns: 'check --api-url and the network',
  refused: 'check --api-url and the network',
} as const;

/** One line per failure a user can act on; never the token (a HostFailure's message never holds it). */
export function explain(f: HostFailure, owner: string, repo: string): SifkitError {
  const at = `${owner}/${repo}`;
  const said = `${f.status ?? 'no status'}: ${f.message}`;
  switch (f.kind) {
    case 'unreachable':
    case 'no-answer': {
      const hint =
        NETWORK_HINTS[f.network as keyof typeof NETWORK_HINTS] ??
        'GitHub or the network is slow or down; try again later';
      return new OperationError(`github-${f.network ?? 'network'}`, `GitHub cannot be reached: ${f.message}`, {
        hint,
        cause: f,
      });
    }
    case 'unauthorized':
      return new InputError('github-401', 'GitHub refused the token (401 Bad credentials)', {
        hint: 'set GITHUB_TOKEN to a valid token',
      });
    case 'rate-limited':
      return f.status === 429
        ? new OperationError('github-rate-limit', `GitHub's rate limit is used up (${said})`, {
            hint: 'wait, then run again',
          })
        : new OperationError('github-rate-limit', `GitHub's rate limit is used up (${said})`, {
            hint: 'wait until it resets (x-ratelimit-reset), or use another token',
          });
    case 'forbidden':
      return new RefusedError('github-403', `GitHub forbids this for ${at} (${said})`, {
        hint: 'the token needs contents and pull requests write access to the repository',
      });
    case 'not-found':
      return new InputError('github-404', `${at} not found, or the token cannot see it (${f.status ?? 404})`, {
        hint: 'check --repo and that the token has access',
      });
    case 'moved':
      return new InputError(
        'github-moved',
        `GitHub answers that ${at} has moved (${said}); sifkit does not follow redirects with the token`,
        { hint: 'give --repo (or --api-url) its new name' },
      );
    case 'conflict':
      return new OperationError(
        'github-conflict',
        `GitHub refused a change that conflicts with ${at} as it is now (${said})`,
        { hint: 'the branch changed meanwhile; run again', cause: f },
      );
    case 'rejected':
      return new InputError('github-422', `GitHub rejected the request (${said})`);
    case 'bad-answer':
      return new OperationError(
        'github-bad-answer',
        `GitHub answered with something its API does not document: ${f.message}`,
        { hint: 'check --api-url: it should be GitHub REST API v3', cause: f },
      );
    default:
      return new OperationError(
        'github-failed',
        `GitHub request failed${f.status ? ` (${f.status})` : ''}: ${f.message}`,
        { cause: f },
      );
  }
}

/**
 * Moves the branch from `from` to the new commit. GitHub refuses a move
 * that is not a fast forward; whether that is because someone pushed to
 * the branch meanwhile is read from the branch itself, not the message.
 */
async function moveBranch(host: PullRequestHost, r: RepoRef, branch: string, from: string, to: string): Promise<void> {
  try {
    await host.moveBranch(r, branch, to);
  } catch (e) {
    if (!isHostFailure(e) || (e.kind !== 'rejected' && e.kind !== 'conflict')) throw e;
    const now = await host.branchHead(r, branch);
    if (now === from) throw e;
    throw new OperationError(
      'github-conflict',
      `the branch ${branch} of ${r.owner}/${r.repo} moved while sifkit committed to it (${now ? `now at ${now.slice(0, 12)}` : 'deleted'})`,
      { hint: 'someone else changed it; run again to commit on top', cause: e },
    );
  }
}

export async function publishPullRequest(
  req: PublishRequest,
  host: PullRequestHost,
  opts: PublishOptions = {},
): Promise<PublishResult> {
  const r: RepoRef = { owner: req.owner, repo: req.repo };
  // Between steps: a Ctrl-C stops before the next request, not after the PR.
  const step = <T>(p: Promise<T>): Promise<T> => p.then((v) => (throwIfAborted(opts.signal), v));
  try {
    throwIfAborted(opts.signal);
    const base = await step(host.defaultBranch(r));
    const baseHead = await step(host.branchHead(r, base));
    if (baseHead === undefined)
      throw new OperationError('github-empty', `${req.owner}/${req.repo} has no commit on its default branch ${base}`, {
        hint: 'push a first commit to it',
      });
    const head =
      (await step(host.branchHead(r, req.branch))) ??
      (await step(
        createOnce(
          () => host.createBranch(r, req.branch, baseHead),
          () => host.branchHead(r, req.branch),
          opts.log,
        ),
      ));
    const headTree = await step(host.commitTree(r, head));
    const entries: TreeEntry[] = req.files.map((f) => ({ path: f.path, content: f.content }));
    for (const [from, to] of req.moves ?? []) {
      const sha = await step(host.fileSha(r, from, head));
      if (sha === undefined) continue; // moved already
      entries.push({ path: to, sha }, { path: from, sha: null });
    }
    const tree = await step(host.createTree(r, headTree, entries));
    // Same tree as the branch already has: nothing to commit (a rerun).
    const committed = tree !== headTree;
    let commit = head;
    if (committed) {
      commit = await step(host.createCommit(r, { message: req.message, tree, parents: [head] }));
      await step(moveBranch(host, r, req.branch, head, commit));
    }
    const open = await step(host.findPullRequest(r, req.branch));
    if (open) {
      if (open.title !== req.title || open.body !== req.body)
        await step(host.updatePullRequest(r, open.number, { title: req.title, body: req.body }));
      return { branch: req.branch, commit, committed, pr: { number: open.number, url: open.url, created: false } };
    }
    const pr = await step(
      createOnce(
        () => host.openPullRequest(r, { title: req.title, body: req.body, head: req.branch, base }),
        () => host.findPullRequest(r, req.branch),
        opts.log,
      ),
    );
    return { branch: req.branch, commit, committed, pr: { number: pr.number, url: pr.url, created: true } };
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throwIfAborted(opts.signal);
    if (isHostFailure(e)) throw explain(e, req.owner, req.repo);
    throw e;
  }
}
