/** publishPullRequest's orchestration over an in-memory GitHub: what is created, what is updated, what is left alone, and why it stops. */
import { RequestError } from '@octokit/request-error';
import { ExitCode, InputError, InterruptedError, OperationError, RefusedError } from '../../src/errors';
import { HostFailure } from '../../src/github/host';
import { failureOf, GitHubNetworkError } from '../../src/github/octokit';
import { publishPullRequest, type PublishRequest } from '../../src/github/pull-request';
import { InMemoryGitHub } from '../support/fake-github';

const DIR = 'easybuild/easyconfigs/m/mpi4py';
const OLD = `${DIR}/mpi4py-3.1.4-old.eb`;
const ARCHIVED = 'easybuild/easyconfigs/__archive__/m/mpi4py/mpi4py-3.1.4-old.eb';
const WRITES = ['createBranch', 'createCommit', 'moveBranch', 'openPullRequest', 'updatePullRequest'];

function request(over: Partial<PublishRequest> = {}): PublishRequest {
  return {
    owner: 'Lumi-supercomputer',
    repo: 'LUMI-EasyBuild-containers',
    branch: 'sifkit/mpi4py-3.1.6',
    title: 'mpi4py/3.1.6: container abc',
    body: 'New container release.\n',
    message: 'mpi4py/3.1.6: EasyConfig and user page',
    files: [
      { path: `${DIR}/mpi4py-3.1.6.eb`, content: "name = 'mpi4py'\n" },
      { path: `${DIR}/USER.md`, content: '# mpi4py\n' },
    ],
    ...over,
  };
}

const repo = () => new InMemoryGitHub({ files: { 'README.md': 'contrib\n', [OLD]: 'old\n' } });

describe('publishPullRequest over an in-memory GitHub', () => {
  it('opens one pull request from a new branch with the files, leaving the default branch alone', async () => {
    const gh = repo();
    const r = await publishPullRequest(request(), gh);
    expect(r).toMatchObject({ branch: 'sifkit/mpi4py-3.1.6', committed: true, pr: { number: 1, created: true } });
    expect(gh.files(r.branch)).toEqual({
      'README.md': 'contrib\n',
      [OLD]: 'old\n',
      [`${DIR}/mpi4py-3.1.6.eb`]: "name = 'mpi4py'\n",
      [`${DIR}/USER.md`]: '# mpi4py\n',
    });
    expect(gh.branches.get(r.branch)).toBe(r.commit);
    expect(gh.commits.get(r.commit)).toMatchObject({ parents: [gh.branches.get('main')], message: request().message });
    expect(gh.files('main')).toEqual({ 'README.md': 'contrib\n', [OLD]: 'old\n' });
    expect(gh.pulls).toEqual([
      { number: 1, head: r.branch, base: 'main', title: request().title, body: request().body, state: 'open' },
    ]);
  });

  it('changes nothing when the same release is published again', async () => {
    const gh = repo();
    const first = await publishPullRequest(request(), gh);
    const before = gh.state();
    gh.calls.length = 0;
    const again = await publishPullRequest(request(), gh);
    expect(again).toEqual({ ...first, committed: false, pr: { ...first.pr, created: false } });
    expect(gh.state()).toEqual(before);
    expect(gh.calls.filter((c) => WRITES.includes(c))).toEqual([]);
  });

  it('commits a changed file on top of the branch and updates the open pull request', async () => {
    const gh = repo();
    const first = await publishPullRequest(request(), gh);
    const changed = request({
      body: 'Rebuilt.\n',
      files: [{ path: `${DIR}/mpi4py-3.1.6.eb`, content: "name = 'mpi4py'\nversion = '3.1.6'\n" }],
    });
    const r = await publishPullRequest(changed, gh);
    expect(r).toMatchObject({ committed: true, pr: { number: 1, created: false } });
    expect(gh.commits.get(r.commit)!.parents).toEqual([first.commit]);
    expect(gh.files(r.branch)[`${DIR}/mpi4py-3.1.6.eb`]).toBe("name = 'mpi4py'\nversion = '3.1.6'\n");
    expect(gh.files(r.branch)[`${DIR}/USER.md`]).toBe('# mpi4py\n'); // kept from the first commit
    expect(gh.pulls).toHaveLength(1);
    expect(gh.pulls[0].body).toBe('Rebuilt.\n');
  });

  it('moves an archived EasyConfig once, and skips the move when it is done', async () => {
    const gh = repo();
    const moved = request({ moves: [[OLD, ARCHIVED]] });
    const r = await publishPullRequest(moved, gh);
    expect(gh.files(r.branch)).toMatchObject({ [ARCHIVED]: 'old\n' });
    expect(gh.files(r.branch)[OLD]).toBeUndefined();
    expect(await publishPullRequest(moved, gh)).toMatchObject({ committed: false, pr: { created: false } });
  });

  it.each([
    [
      'no such repository',
      (gh: InMemoryGitHub) => void gh,
      { repo: 'elsewhere' },
      InputError,
      'Lumi-supercomputer/elsewhere not found, or the token cannot see it (404)',
    ],
    [
      'a token refused',
      (gh: InMemoryGitHub) => {
        gh.badToken = true;
      },
      {},
      InputError,
      'GitHub refused the token (401 Bad credentials)',
    ],
    [
      'no write permission',
      (gh: InMemoryGitHub) => {
        gh.readOnly = true;
      },
      {},
      RefusedError,
      'GitHub forbids this for Lumi-supercomputer/LUMI-EasyBuild-containers (403: Resource not accessible by integration)',
    ],
    [
      'a rejected pull request',
      (gh: InMemoryGitHub) =>
        gh.failNext('openPullRequest', new HostFailure('rejected', 'Validation Failed', { status: 422 })),
      {},
      InputError,
      'GitHub rejected the request (422: Validation Failed)',
    ],
    [
      'a renamed repository',
      (gh: InMemoryGitHub) =>
        gh.failNext(
          'defaultBranch',
          new HostFailure('moved', 'moved to https://api.github.com/repositories/42', { status: 301 }),
        ),
      {},
      InputError,
      'GitHub answers that Lumi-supercomputer/LUMI-EasyBuild-containers has moved (301: moved to https://api.github.com/repositories/42); sifkit does not follow redirects with the token',
    ],
    [
      'a conflict',
      (gh: InMemoryGitHub) =>
        gh.failNext('createTree', new HostFailure('conflict', 'Git Repository is empty.', { status: 409 })),
      {},
      OperationError,
      'GitHub refused a change that conflicts with Lumi-supercomputer/LUMI-EasyBuild-containers as it is now (409: Git Repository is empty.)',
    ],
    [
      'a server that stays down',
      (gh: InMemoryGitHub) =>
        gh.failNext('defaultBranch', new HostFailure('server', 'Service Unavailable', { status: 503 })),
      {},
      OperationError,
      'GitHub request failed (503): Service Unavailable',
    ],
    [
      'no network',
      (gh: InMemoryGitHub) =>
        gh.failNext(
          'defaultBranch',
          new HostFailure('unreachable', 'connection refused: 127.0.0.1:9 (ECONNREFUSED)', { network: 'refused' }),
        ),
      {},
      OperationError,
      'GitHub cannot be reached: connection refused: 127.0.0.1:9 (ECONNREFUSED)',
    ],
  ])('explains %s in one line and opens nothing', async (_what, setup, over, cls, message) => {
    const gh = repo();
    setup(gh);
    const p = publishPullRequest(request(over), gh);
    await expect(p).rejects.toThrow(cls);
    await expect(p).rejects.toMatchObject({ message });
    expect(message).not.toContain('\n');
    expect(gh.pulls).toEqual([]);
  });

  it('names a branch that moved while it committed, and leaves the other commit in place', async () => {
    const gh = repo();
    await publishPullRequest(request(), gh);
    let theirs = '';
    gh.beforeNext('moveBranch', () => {
      theirs = gh.push('sifkit/mpi4py-3.1.6', { 'other.txt': 'x\n' });
    });
    const p = publishPullRequest(request({ files: [{ path: `${DIR}/USER.md`, content: '# changed\n' }] }), gh);
    await expect(p).rejects.toThrow(OperationError);
    await expect(p).rejects.toMatchObject({
      code: 'github-conflict',
      exitCode: ExitCode.failed,
      message: `the branch sifkit/mpi4py-3.1.6 of Lumi-supercomputer/LUMI-EasyBuild-containers moved while sifkit committed to it (now at ${theirs.slice(0, 12)})`,
    });
    expect(gh.branches.get('sifkit/mpi4py-3.1.6')).toBe(theirs);
    expect(gh.pulls).toHaveLength(1);
  });

  it('does not create a branch or pull request twice when the answer was lost but the request applied', async () => {
    const gh = repo();
    gh.loseAnswer('createBranch');
    gh.loseAnswer('openPullRequest');
    const log: string[] = [];
    const r = await publishPullRequest(request(), gh, { log: (l) => log.push(l) });
    expect(r).toMatchObject({ committed: true, pr: { number: 1, created: true } });
    expect(gh.calls.filter((c) => c === 'createBranch' || c === 'openPullRequest')).toEqual([
      'createBranch',
      'openPullRequest',
    ]);
    expect(log).toEqual([
      'GitHub: the answer was lost (the connection was dropped before the answer), but the request was applied',
      'GitHub: the answer was lost (the connection was dropped before the answer), but the request was applied',
    ]);
  });

  it('sends a creating request again only when the lost one was not applied', async () => {
    const gh = repo();
    gh.failNext('openPullRequest', new HostFailure('server', 'Bad Gateway', { status: 502 }));
    const log: string[] = [];
    const r = await publishPullRequest(request(), gh, { log: (l) => log.push(l) });
    expect(r.pr).toMatchObject({ number: 1, created: true });
    expect(gh.calls.filter((c) => c === 'openPullRequest')).toHaveLength(2);
    expect(log).toEqual(['GitHub: the answer was lost (502) and the request was not applied; sending it again']);
  });

  it('does not resend a request refused for a reason waiting cannot mend', async () => {
    const gh = repo();
    gh.failNext(
      'openPullRequest',
      new HostFailure('forbidden', 'Resource not accessible by integration', { status: 403 }),
    );
    await expect(publishPullRequest(request(), gh)).rejects.toThrow(RefusedError);
    expect(gh.calls.filter((c) => c === 'openPullRequest')).toHaveLength(1);
  });

  it('stops at Ctrl-C between requests: no commit on the branch, no pull request', async () => {
    const gh = repo();
    const ac = new AbortController();
    gh.beforeNext('createCommit', () => ac.abort());
    const p = publishPullRequest(request(), gh, { signal: ac.signal });
    await expect(p).rejects.toThrow(InterruptedError);
    expect(gh.calls).not.toContain('moveBranch');
    expect(gh.calls).not.toContain('openPullRequest');
    expect(gh.pulls).toEqual([]);
    expect(gh.branches.get('sifkit/mpi4py-3.1.6')).toBe(gh.branches.get('main'));
  });

  it('sends nothing when the run was cancelled before it started', async () => {
    const gh = repo();
    const ac = new AbortController();
    ac.abort();
    await expect(publishPullRequest(request(), gh, { signal: ac.signal })).rejects.toThrow(InterruptedError);
    expect(gh.calls).toEqual([]);
  });

  it('turns a failed request cut by Ctrl-C into an interruption, not a GitHub error', async () => {
    const gh = repo();
    const ac = new AbortController();
    gh.beforeNext('createTree', () => ac.abort());
    gh.failNext('createTree', new HostFailure('failed', 'This operation was aborted'));
    await expect(publishPullRequest(request(), gh, { signal: ac.signal })).rejects.toThrow(InterruptedError);
  });
});

describe("the Octokit host's failures, by status and network kind", () => {
  // Only the mapping: no request is sent.
  const answered = (status: number, message: string, headers: Record<string, string> = {}) =>
    new RequestError(message, status, {
      request: { method: 'GET', url: 'https://api.github.com/repos/a/b', headers: {} },
      response: { status, url: 'https://api.github.com/repos/a/b', headers, data: { message } },
    });

  it.each([
    [401, {}, 'unauthorized'],
    [403, {}, 'forbidden'],
    [403, { 'x-ratelimit-remaining': '0' }, 'rate-limited'],
    [404, {}, 'not-found'],
    [301, {}, 'moved'],
    [409, {}, 'conflict'],
    [422, {}, 'rejected'],
    [429, {}, 'rate-limited'],
    [502, {}, 'server'],
    [418, {}, 'failed'],
  ])('%i %j is %s', (status, headers, kind) => {
    expect(failureOf(answered(status, 'said', headers))).toMatchObject({ kind, status, message: 'said' });
  });

  it('a timeout or a dropped connection leaves the outcome unknown; a refused one sent nothing', () => {
    const net = (k: 'refused' | 'dns' | 'tls' | 'timeout' | 'reset') =>
      failureOf(new GitHubNetworkError(k, 'h', '', 'POST', 'https://h/x'));
    expect([net('timeout').kind, net('reset').kind]).toEqual(['no-answer', 'no-answer']);
    expect([net('refused').kind, net('dns').kind, net('tls').kind]).toEqual([
      'unreachable',
      'unreachable',
      'unreachable',
    ]);
    expect(net('timeout').status).toBeUndefined(); // never the 500 the retry plugin is shown
  });

  it('keeps control characters and the length of what the server said in check', () => {
    const f = failureOf(answered(422, `bad\n${'x'.repeat(500)}`));
    expect(f.message).not.toContain('\n');
    expect(f.message.length).toBeLessThan(260);
  });
});
