/**
 * The real PullRequestHost (Octokit over fetch) against loopback servers:
 * what it sends where. A redirect is not followed, so the token never
 * reaches the host a redirect names.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HostFailure } from '../../src/github/host';
import { octokitHost } from '../../src/github/octokit';

const TOKEN = 'ghp_sifkitClientTest0123456789abcdef';

/** A loopback server answering every request with `answer`, recording what it was sent. */
async function server(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: Array<{ url?: string; authorization?: string }> = [];
  const s = http.createServer((req, res) => {
    seen.push({ url: req.url, authorization: req.headers.authorization });
    answer(req, res);
  });
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((ok) => s.close(() => ok())),
  };
}

describe('the Octokit host', () => {
  it('does not follow a redirect: the token stays with the API URL, and the answer is a one-kind failure', async () => {
    const elsewhere = await server((_q, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"default_branch":"main"}'),
    );
    const api = await server((_q, res) => res.writeHead(301, { location: `${elsewhere.url}/repositories/42` }).end());
    try {
      const host = octokitHost({ token: TOKEN, apiUrl: api.url, backoffMs: 10, timeoutMs: 10_000 });
      const p = host.defaultBranch({ owner: 'o', repo: 'r' });
      await expect(p).rejects.toBeInstanceOf(HostFailure);
      await expect(p).rejects.toMatchObject({
        kind: 'moved',
        status: 301,
        message: `moved to ${elsewhere.url}/repositories/42`,
      });
      expect(api.seen).toEqual([{ url: '/repos/o/r', authorization: `token ${TOKEN}` }]);
      expect(elsewhere.seen).toEqual([]);
    } finally {
      await Promise.all([api.close(), elsewhere.close()]);
    }
  });

  it('answers a 404 lookup as "not there", and a 404 elsewhere as not-found', async () => {
    const api = await server((_q, res) =>
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}'),
    );
    try {
      const host = octokitHost({ token: TOKEN, apiUrl: api.url, backoffMs: 10, timeoutMs: 10_000 });
      await expect(host.branchHead({ owner: 'o', repo: 'r' }, 'b')).resolves.toBeUndefined();
      await expect(host.fileSha({ owner: 'o', repo: 'r' }, 'a/b.eb', 'abc')).resolves.toBeUndefined();
      await expect(host.defaultBranch({ owner: 'o', repo: 'r' })).rejects.toMatchObject({
        kind: 'not-found',
        status: 404,
        message: 'Not Found',
      });
    } finally {
      await api.close();
    }
  });

  it('checks every answer against its schema: a 200 with garbage is a bad-answer failure naming the field', async () => {
    const answers: Record<string, string> = {
      '/repos/o/r': '{"default_branch":42}',
      '/repos/o/r/git/ref/heads/b': '{"object":{"sha":"not-a-sha"}}',
      '/repos/o/r/pulls?head=o:h&state=open': '{"number":1}',
      '/repos/o/r/contents/a.eb?ref=main': 'this is not JSON',
    };
    const api = await server((q, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(answers[decodeURIComponent(q.url ?? '')] ?? '{}'),
    );
    try {
      const host = octokitHost({ token: TOKEN, apiUrl: api.url, backoffMs: 10, timeoutMs: 10_000 });
      const r = { owner: 'o', repo: 'r' };
      await expect(host.defaultBranch(r)).rejects.toMatchObject({
        kind: 'bad-answer',
        message: 'the answer to GET repository: default_branch: expected a string, found the number 42',
      });
      await expect(host.branchHead(r, 'b')).rejects.toMatchObject({
        kind: 'bad-answer',
        message: expect.stringMatching(/^the answer to GET ref: object\.sha: expected a git object name/),
      });
      await expect(host.findPullRequest(r, 'h')).rejects.toMatchObject({
        kind: 'bad-answer',
        message: expect.stringMatching(/^the answer to GET pulls: \(the document\): expected a list, found a mapping/),
      });
      await expect(host.fileSha(r, 'a.eb', 'main')).rejects.toMatchObject({ kind: 'bad-answer' });
      await expect(host.createCommit(r, { message: 'm', tree: 'a'.repeat(40), parents: [] })).rejects.toMatchObject({
        kind: 'bad-answer',
        message: expect.stringMatching(/^the answer to POST commit: sha: expected a string, found nothing/),
      });
    } finally {
      await api.close();
    }
  });
});
