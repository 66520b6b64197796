/**
 * A local HTTP server speaking the GitHub REST endpoints the publisher
 * calls (repos, git refs/commits/trees, contents, pulls), with an
 * in-memory repository, token checks and injectable failures. GitHub
 * itself cannot be reached from here; the real Octokit client talks to this.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

type Tree = Map<string, string>; // path → blob sha

interface Commit {
  sha: string;
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
  state: 'open';
}

interface Failure {
  status: number;
  body: object;
  headers?: Record<string, string>;
  match?: RegExp;
}

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

export class FakeGitHub {
  readonly owner: string;
  readonly repo: string;
  token: string;
  readOnly = false;
  blobs = new Map<string, string>();
  trees = new Map<string, Tree>();
  commits = new Map<string, Commit>();
  refs = new Map<string, string>();
  pulls: Pull[] = [];
  requests: Array<{ method: string; path: string; status: number }> = [];
  private failures: Failure[] = [];
  private lost: Array<{ how: 'drop' | 'hang'; match: RegExp }> = [];
  private server?: http.Server;
  url = '';

  constructor(owner: string, repo: string, token: string, initial: Record<string, string> = {}) {
    this.owner = owner;
    this.repo = repo;
    this.token = token;
    const tree = this.storeTree(new Map(Object.entries(initial).map(([p, c]) => [p, this.storeBlob(c)])));
    const root: Commit = { sha: sha1(`root ${tree}`), tree, parents: [], message: 'initial' };
    this.commits.set(root.sha, root);
    this.refs.set('heads/main', root.sha);
  }

  /** The next matching requests fail with this status (and headers), `times` times. */
  failNext(
    times: number,
    status: number,
    body: object = { message: 'Server Error' },
    headers?: Record<string, string>,
    match?: RegExp,
  ): void {
    for (let i = 0; i < times; i++) this.failures.push({ status, body, headers, match });
  }

  /**
   * The next matching request is applied, but its answer is lost: the
   * connection is dropped instead ('drop'), or never answered ('hang').
   */
  loseAnswer(how: 'drop' | 'hang', match: RegExp): void {
    this.lost.push({ how, match });
  }

  /** The files at the tip of a branch. */
  files(branch: string): Record<string, string> {
    const c = this.commits.get(this.refs.get(`heads/${branch}`) ?? '');
    const tree = c ? this.trees.get(c.tree) : undefined;
    return Object.fromEntries([...(tree ?? new Map())].map(([p, b]) => [p, this.blobs.get(b) as string]));
  }

  private storeBlob(content: string): string {
    const s = sha1(`blob ${content}`);
    this.blobs.set(s, content);
    return s;
  }

  private storeTree(tree: Tree): string {
    const s = sha1(`tree ${JSON.stringify([...tree].sort())}`);
    this.trees.set(s, tree);
    return s;
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://x');
        const send = (status: number, body: object, headers: Record<string, string> = {}) => {
          this.requests.push({ method: req.method ?? '', path: u.pathname, status });
          res.writeHead(status, { 'content-type': 'application/json', ...headers });
          res.end(JSON.stringify(body));
        };
        const auth = req.headers.authorization ?? '';
        if (auth !== `token ${this.token}` && auth !== `Bearer ${this.token}`)
          return send(401, { message: 'Bad credentials' });
        const fi = this.failures.findIndex((f) => !f.match || f.match.test(`${req.method} ${u.pathname}`));
        if (fi >= 0) {
          const f = this.failures.splice(fi, 1)[0];
          return send(f.status, f.body, f.headers);
        }
        const body = raw ? JSON.parse(raw) : {};
        try {
          const r = this.route(req.method ?? 'GET', decodeURIComponent(u.pathname), u.searchParams, body);
          const li = this.lost.findIndex((l) => l.match.test(`${req.method} ${u.pathname}`));
          if (li >= 0) {
            const { how } = this.lost.splice(li, 1)[0];
            this.requests.push({ method: req.method ?? '', path: u.pathname, status: how === 'drop' ? -1 : -2 });
            if (how === 'drop') req.socket.destroy();
            return;
          }
          send(r[0], r[1]);
        } catch (e) {
          send(500, { message: String(e) });
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this.url;
  }

  stop(): Promise<void> {
    // A request left hanging on purpose must not keep the server open.
    this.server?.closeAllConnections();
    return new Promise((r) => this.server?.close(() => r()) ?? r());
  }

  private route(method: string, p: string, q: URLSearchParams, body: Record<string, unknown>): [number, object] {
    const prefix = `/repos/${this.owner}/${this.repo}`;
    if (!p.startsWith(prefix)) return [404, { message: 'Not Found' }];
    const rest = p.slice(prefix.length);
    const writes = method !== 'GET';
    if (writes && this.readOnly) return [403, { message: 'Resource not accessible by integration' }];
    let m: RegExpExecArray | null;
    if (method === 'GET' && rest === '')
      return [200, { name: this.repo, full_name: `${this.owner}/${this.repo}`, default_branch: 'main' }];
    if (method === 'GET' && (m = /^\/git\/ref\/(.+)$/.exec(rest))) {
      const sha = this.refs.get(m[1]);
      return sha ? [200, { ref: `refs/${m[1]}`, object: { sha, type: 'commit' } }] : [404, { message: 'Not Found' }];
    }
    if (method === 'POST' && rest === '/git/refs') {
      const ref = String(body.ref).replace(/^refs\//, '');
      if (this.refs.has(ref)) return [422, { message: 'Reference already exists' }];
      this.refs.set(ref, String(body.sha));
      return [201, { ref: body.ref, object: { sha: body.sha } }];
    }
    if (method === 'PATCH' && (m = /^\/git\/refs\/(.+)$/.exec(rest))) {
      if (!this.refs.has(m[1])) return [422, { message: 'Reference does not exist' }];
      this.refs.set(m[1], String(body.sha));
      return [200, { ref: `refs/${m[1]}`, object: { sha: body.sha } }];
    }
    if (method === 'GET' && (m = /^\/git\/commits\/([0-9a-f]+)$/.exec(rest))) {
      const c = this.commits.get(m[1]);
      return c
        ? [200, { sha: c.sha, tree: { sha: c.tree }, parents: c.parents.map((s) => ({ sha: s })), message: c.message }]
        : [404, { message: 'Not Found' }];
    }
    if (method === 'POST' && rest === '/git/trees') {
      const base = this.trees.get(String(body.base_tree));
      if (!base) return [422, { message: 'base_tree not found' }];
      const tree = new Map(base);
      for (const e of body.tree as Array<{ path: string; content?: string; sha?: string | null }>) {
        if (e.content !== undefined) tree.set(e.path, this.storeBlob(e.content));
        else if (e.sha === null) tree.delete(e.path);
        else if (e.sha && this.blobs.has(e.sha)) tree.set(e.path, e.sha);
        else return [422, { message: `tree entry ${e.path} invalid` }];
      }
      return [201, { sha: this.storeTree(tree) }];
    }
    if (method === 'POST' && rest === '/git/commits') {
      const parents = body.parents as string[];
      const c: Commit = {
        sha: sha1(`commit ${body.tree} ${parents.join(',')} ${body.message} ${this.commits.size}`),
        tree: String(body.tree),
        parents,
        message: String(body.message),
      };
      this.commits.set(c.sha, c);
      return [201, { sha: c.sha, tree: { sha: c.tree } }];
    }
    if (method === 'GET' && (m = /^\/contents\/(.+)$/.exec(rest))) {
      const ref = q.get('ref') ?? this.refs.get('heads/main');
      const c = this.commits.get(ref ?? '') ?? this.commits.get(this.refs.get(`heads/${ref}`) ?? '');
      const blob = c ? this.trees.get(c.tree)?.get(m[1]) : undefined;
      return blob ? [200, { type: 'file', path: m[1], sha: blob }] : [404, { message: 'Not Found' }];
    }
    if (method === 'GET' && rest === '/pulls') {
      const head = q.get('head')?.split(':')[1];
      return [
        200,
        this.pulls
          .filter((x) => !head || x.head === head)
          .map((x) => ({ ...x, html_url: `https://github.example/${this.owner}/${this.repo}/pull/${x.number}` })),
      ];
    }
    if (method === 'POST' && rest === '/pulls') {
      if (this.pulls.some((x) => x.head === body.head))
        return [422, { message: `A pull request already exists for ${this.owner}:${body.head}.` }];
      const pr: Pull = {
        number: this.pulls.length + 1,
        head: String(body.head),
        base: String(body.base),
        title: String(body.title),
        body: String(body.body),
        state: 'open',
      };
      this.pulls.push(pr);
      return [201, { ...pr, html_url: `https://github.example/${this.owner}/${this.repo}/pull/${pr.number}` }];
    }
    if (method === 'PATCH' && (m = /^\/pulls\/(\d+)$/.exec(rest))) {
      const pr = this.pulls.find((x) => x.number === Number(m![1]));
      if (!pr) return [404, { message: 'Not Found' }];
      Object.assign(pr, { title: body.title ?? pr.title, body: body.body ?? pr.body });
      return [200, { ...pr, html_url: `https://github.example/${this.owner}/${this.repo}/pull/${pr.number}` }];
    }
    return [404, { message: `no route ${method} ${rest}` }];
  }
}
