/**
 * What sifkit asks of GitHub to ship a release, and nothing more: the
 * calls publishPullRequest makes, in sifkit's own types. One real
 * implementation talks REST through Octokit (github/octokit.ts); unit
 * tests use an in-memory one (test/support/fake-github.ts). Pure.
 */

export interface RepoRef {
  owner: string;
  repo: string;
}

/** One path of a new git tree: fresh content, an existing blob, or `sha: null` to delete it. */
export interface TreeEntry {
  path: string;
  content?: string;
  sha?: string | null;
}

export interface PullRequestInfo {
  number: number;
  url: string;
  title: string;
  body: string;
}

/**
 * A host is bound to one run (its token, API URL and AbortSignal). Each
 * call either answers or throws a HostFailure; "not there" is an answer
 * (undefined), not a failure.
 */
export interface PullRequestHost {
  defaultBranch(r: RepoRef): Promise<string>;
  /** The commit a branch points at, or undefined when there is no such branch. */
  branchHead(r: RepoRef, branch: string): Promise<string | undefined>;
  /** Creates a branch at a commit; returns the commit. */
  createBranch(r: RepoRef, branch: string, sha: string): Promise<string>;
  /** The tree of a commit. */
  commitTree(r: RepoRef, commit: string): Promise<string>;
  /** The blob of a file at a commit, or undefined when no file is there. */
  fileSha(r: RepoRef, path: string, ref: string): Promise<string | undefined>;
  /** A tree: the base tree with the entries applied. The same content gives the same tree. */
  createTree(r: RepoRef, baseTree: string, entries: TreeEntry[]): Promise<string>;
  createCommit(r: RepoRef, c: { message: string; tree: string; parents: string[] }): Promise<string>;
  /** Moves a branch forward to a commit (never forced). */
  moveBranch(r: RepoRef, branch: string, sha: string): Promise<void>;
  /** The open pull request from a branch of the same repository, if any. */
  findPullRequest(r: RepoRef, head: string): Promise<PullRequestInfo | undefined>;
  openPullRequest(
    r: RepoRef,
    pr: { title: string; body: string; head: string; base: string },
  ): Promise<PullRequestInfo>;
  updatePullRequest(r: RepoRef, number: number, pr: { title: string; body: string }): Promise<void>;
}

export const NETWORK_WORDS = {
  refused: 'connection refused',
  dns: 'the host name does not resolve',
  tls: 'the TLS handshake failed',
  timeout: 'no answer in time',
  reset: 'the connection was dropped before the answer',
  network: 'network failure',
} as const;
export type NetworkKind = keyof typeof NETWORK_WORDS;

/**
 * What went wrong, by what a caller does about it. `moved` is a redirect,
 * never followed; `no-answer` and `server` leave a write's outcome
 * unknown; `unreachable` means nothing
 * was sent (a refused connection, a name that does not resolve, a bad
 * certificate); `bad-answer` is a 200 whose body is not what the API
 * documents.
 */
export type FailureKind =
  | 'bad-answer'
  | 'unauthorized'
  | 'forbidden'
  | 'rate-limited'
  | 'not-found'
  | 'moved'
  | 'conflict'
  | 'rejected'
  | 'unreachable'
  | 'no-answer'
  | 'server'
  | 'failed';

export interface FailureDetails {
  /** The HTTP status, when there was an answer. */
  status?: number;
  /** The kind of network failure, when there was none. */
  network?: NetworkKind;
  cause?: unknown;
}

/** A host call that failed. `message` is what the server or the network said, already safe to show. */
export class HostFailure extends Error {
  readonly status?: number;
  readonly network?: NetworkKind;
  constructor(
    readonly kind: FailureKind,
    message: string,
    details: FailureDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HostFailure';
    this.status = details.status;
    this.network = details.network;
  }
}

export function isHostFailure(e: unknown): e is HostFailure {
  return e instanceof HostFailure;
}
