/**
 * An in-memory PullRequestHost for unit tests: one repository (blobs,
 * trees and commits named by their content, branches, pull requests),
 * answering as GitHub does: "not there" as undefined, refusals as the
 * HostFailure the Octokit host would give for GitHub's answer. Tests can
 * fail a call, lose a call's answer, or act (abort, push) before a call.
 */
import { createHash } from 'node:crypto';
import {
  HostFailure,
  type PullRequestHost,
  type PullRequestInfo,
  type RepoRef,
  type TreeEntry,
} from '../../src/github/host';

type Call = keyof PullRequestHost;
type Tree = Map<string, string>; // path → blob sha

interface Commit {
  tree: string;
  parents: string[];
  message: string;
}

interface Pull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  state: 'open' | 'closed';
}

const WRITES: ReadonlySet<Call> = new Set<Call>([
  'createBranch',
  'createTree',
  'createCommit',
  'moveBranch',
  'openPullRequest',
  'updatePullRequest',
]);
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

export interface InMemoryGitHubOptions {
  owner?: string;
  repo?: string;
  defaultBranch?: string;
  /** The repository's files on the default branch. */
  files?: Record<string, string>;
}

export class InMemoryGitHub implements PullRequestHost {
  readonly owner: string;
  readonly repo: string;
  readonly main: string;
  /** The token is refused (401) on every call. */
  badToken = false;
  /** The token may read but not write (403), as a read-only token. */
  readOnly = false;
  /** Every call made, in order. */
  readonly calls: Call[] = [];
  readonly blobs = new Map<string, string>();
  readonly trees = new Map<string, Tree>();
  readonly commits = new Map<string, Commit>();
  readonly branches = new Map<string, string>();
  readonly pulls: Pull[] = [];
  private readonly before = new Map<Call, Array<() => void | Promise<void>>>();
  private readonly failures = new Map<Call, HostFailure[]>();
  private readonly lost = new Map<Call, HostFailure[]>();

  constructor(o: InMemoryGitHubOptions = {}) {
    this.owner = o.owner ?? 'Lumi-supercomputer';
    this.repo = o.repo ?? 'LUMI-EasyBuild-containers';
    this.main = o.defaultBranch ?? 'main';
    const tree = this.storeTree(new Map(Object.entries(o.files ?? {}).map(([p, c]) => [p, this.storeBlob(c)])));
    this.branches.set(this.main, this.storeCommit({ tree, parents: [], message: 'initial' }));
  }

  /** Runs `act` just before the next `call` (once). */
  beforeNext(call: Call, act: () => void | Promise<void>): void {
    this.before.set(call, [...(this.before.get(call) ?? []), act]);
  }

  /** The next `call` fails with `failure` without being applied. */
  failNext(call: Call, failure: HostFailure): void {
    this.failures.set(call, [...(this.failures.get(call) ?? []), failure]);
  }

  /** The next `call` is applied, but its answer is lost: the caller sees `failure`. */
  loseAnswer(
    call: Call,
    failure = new HostFailure('no-answer', 'the connection was dropped before the answer: fake', { network: 'reset' }),
  ): void {
    this.lost.set(call, [...(this.lost.get(call) ?? []), failure]);
  }

  /** A branch's files with their content. */
  files(branch: string): Record<string, string> {
    const head = this.branches.get(branch);
    if (!head) throw new Error(`no branch ${branch}`);
    const tree = this.trees.get(this.commits.get(head)!.tree)!;
    return Object.fromEntries(
      [...tree].sort(([a], [b]) => a.localeCompare(b)).map(([p, b]) => [p, this.blobs.get(b)!]),
    );
  }

  /** Someone else's commit on a branch (as another push would make). */
  push(branch: string, files: Record<string, string>, message = 'elsewhere'): string {
    const head = this.branches.get(branch)!;
    const tree = new Map(this.trees.get(this.commits.get(head)!.tree)!);
    for (const [p, c] of Object.entries(files)) tree.set(p, this.storeBlob(c));
    const sha = this.storeCommit({ tree: this.storeTree(tree), parents: [head], message });
    this.branches.set(branch, sha);
    return sha;
  }

  /** Everything a publish can change, for comparing before and after. */
  state(): unknown {
    return {
      branches: Object.fromEntries(this.branches),
      pulls: structuredClone(this.pulls),
      commits: this.commits.size,
    };
  }

  private storeBlob(content: string): string {
    const sha = sha1(`blob ${content}`);
    this.blobs.set(sha, content);
    return sha;
  }

  private storeTree(tree: Tree): string {
    const sha = sha1(`tree ${JSON.stringify([...tree].sort(([a], [b]) => a.localeCompare(b)))}`);
    this.trees.set(sha, tree);
    return sha;
  }

  private storeCommit(c: Commit): string {
    const sha = sha1(`commit ${JSON.stringify(c)} ${this.commits.size}`);
    this.commits.set(sha, c);
    return sha;
  }

  /** What GitHub checks before it does anything: the token, the repository, write access. */
  private async enter(call: Call, r: RepoRef): Promise<HostFailure | undefined> {
    this.calls.push(call);
    for (const act of this.before.get(call)?.splice(0) ?? []) await act();
    if (this.badToken) throw new HostFailure('unauthorized', 'Bad credentials', { status: 401 });
    if (r.owner !== this.owner || r.repo !== this.repo)
      throw new HostFailure('not-found', 'Not Found', { status: 404 });
    if (this.readOnly && WRITES.has(call))
      throw new HostFailure('forbidden', 'Resource not accessible by integration', { status: 403 });
    const failure = this.failures.get(call)?.shift();
    if (failure) throw failure;
    return this.lost.get(call)?.shift();
  }

  /** Applies a call; throws its lost answer after applying, when one is set. */
  private async run<T>(call: Call, r: RepoRef, apply: () => T): Promise<T> {
    const lost = await this.enter(call, r);
    const result = apply();
    if (lost) throw lost;
    return result;
  }

  private commit(sha: string): Commit {
    const c = this.commits.get(sha);
    if (!c) throw new HostFailure('rejected', `no commit ${sha}`, { status: 422 });
    return c;
  }

  private info(p: Pull): PullRequestInfo {
    return {
      number: p.number,
      url: `https://github.example/${this.owner}/${this.repo}/pull/${p.number}`,
      title: p.title,
      body: p.body,
    };
  }

  defaultBranch(r: RepoRef): Promise<string> {
    return this.run('defaultBranch', r, () => this.main);
  }

  branchHead(r: RepoRef, branch: string): Promise<string | undefined> {
    return this.run('branchHead', r, () => this.branches.get(branch));
  }

  createBranch(r: RepoRef, branch: string, sha: string): Promise<string> {
    return this.run('createBranch', r, () => {
      if (this.branches.has(branch)) throw new HostFailure('rejected', 'Reference already exists', { status: 422 });
      this.commit(sha);
      this.branches.set(branch, sha);
      return sha;
    });
  }

  commitTree(r: RepoRef, commit: string): Promise<string> {
    return this.run('commitTree', r, () => this.commit(commit).tree);
  }

  fileSha(r: RepoRef, path: string, ref: string): Promise<string | undefined> {
    return this.run('fileSha', r, () => this.trees.get(this.commit(ref).tree)!.get(path));
  }

  createTree(r: RepoRef, baseTree: string, entries: TreeEntry[]): Promise<string> {
    return this.run('createTree', r, () => {
      const base = this.trees.get(baseTree);
      if (!base) throw new HostFailure('rejected', 'base_tree is not a tree', { status: 422 });
      const tree = new Map(base);
      for (const e of entries) {
        if (e.content !== undefined) tree.set(e.path, this.storeBlob(e.content));
        else if (e.sha) {
          if (!this.blobs.has(e.sha)) throw new HostFailure('rejected', `no blob ${e.sha}`, { status: 422 });
          tree.set(e.path, e.sha);
        } else tree.delete(e.path);
      }
      return this.storeTree(tree);
    });
  }

  createCommit(r: RepoRef, c: { message: string; tree: string; parents: string[] }): Promise<string> {
    return this.run('createCommit', r, () => {
      if (!this.trees.has(c.tree)) throw new HostFailure('rejected', 'tree is not a tree', { status: 422 });
      for (const p of c.parents) this.commit(p);
      return this.storeCommit({ tree: c.tree, parents: [...c.parents], message: c.message });
    });
  }

  moveBranch(r: RepoRef, branch: string, sha: string): Promise<void> {
    return this.run('moveBranch', r, () => {
      const now = this.branches.get(branch);
      if (!now) throw new HostFailure('rejected', 'Reference does not exist', { status: 422 });
      // GitHub's answer to a move that would drop commits, unless forced (never).
      if (!this.commit(sha).parents.includes(now))
        throw new HostFailure('rejected', 'Update is not a fast forward', { status: 422 });
      this.branches.set(branch, sha);
    });
  }

  findPullRequest(r: RepoRef, head: string): Promise<PullRequestInfo | undefined> {
    return this.run('findPullRequest', r, () => {
      const p = this.pulls.find((x) => x.head === head && x.state === 'open');
      return p && this.info(p);
    });
  }

  openPullRequest(
    r: RepoRef,
    pr: { title: string; body: string; head: string; base: string },
  ): Promise<PullRequestInfo> {
    return this.run('openPullRequest', r, () => {
      if (!this.branches.has(pr.head) || !this.branches.has(pr.base))
        throw new HostFailure('rejected', 'Validation Failed', { status: 422 });
      if (this.pulls.some((x) => x.head === pr.head && x.state === 'open'))
        throw new HostFailure('rejected', `A pull request already exists for ${this.owner}:${pr.head}.`, {
          status: 422,
        });
      const p: Pull = { number: this.pulls.length + 1, ...pr, state: 'open' };
      this.pulls.push(p);
      return this.info(p);
    });
  }

  updatePullRequest(r: RepoRef, number: number, pr: { title: string; body: string }): Promise<void> {
    return this.run('updatePullRequest', r, () => {
      const p = this.pulls.find((x) => x.number === number);
      if (!p) throw new HostFailure('not-found', 'Not Found', { status: 404 });
      Object.assign(p, pr);
    });
  }
}
