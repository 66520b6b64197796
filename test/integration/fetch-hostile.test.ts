/**
 * Downloads against servers that misbehave in ways sources-fetch.test.ts
 * does not try: a redirect to another host, from https to http, in a loop;
 * a Content-Length that lies either way; a gzip-encoded body; checksums
 * and URLs written oddly (upper case, `sha256:`, wrong length; user info,
 * fragment, `..`, IDN and percent-encoded hosts); two sources sharing a
 * file name or a digest; a download stopped halfway and rerun against a
 * server without Range; a cache disk that fills mid-download (a real
 * tmpfs). Each: the right outcome, or one line with its exit code.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { isSifkitError } from '../../src/errors';
import { loadRecipe } from '../../src/recipe/load';
import type { ResolvedSource } from '../../src/recipe/sources';
import { fetchSources } from '../../src/sources/cache';
import { downloadVerified } from '../../src/sources/download';
import { runCli } from '../support/cli';
import { seededBytes } from '../support/upstream';
import { tinyRecipeText } from '../support/recipes';
import { localhostCert } from '../support/tls';

const exec = promisify(execFile);
jest.setTimeout(60_000);

const SEED = Number(process.env.SIFKIT_TEST_SEED ?? Date.now() % 100000);
console.log(`fetch-hostile seed ${SEED} (SIFKIT_TEST_SEED=${SEED} repeats it)`);

// Files are compared by digest: jest's deep equality walks a Buffer byte by byte (seconds for 600 KiB).
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const FILE = seededBytes(SEED, 600 * 1024 + 3);
const quick = { retries: 2, backoffMs: 10, idleTimeoutMs: 5000 };
const HALF = Math.floor(FILE.length / 2);

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h63-fetch-'));
});
afterEach(() => fs.rm(tmp, { recursive: true, force: true }));

interface Server {
  port: number;
  requests: string[];
  close(): Promise<void>;
}

/** An HTTP (or, given a key and certificate, HTTPS) server on 127.0.0.1 answering with `handle`. */
async function serve(
  handle: (req: http.IncomingMessage, res: http.ServerResponse, port: number) => void,
  tls?: { key: Buffer; cert: Buffer },
): Promise<Server> {
  const requests: string[] = [];
  let port = 0;
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push(`${req.headers.host} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    handle(req, res, port);
  };
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  return {
    port,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A raw TCP server answering every connection with `head` then `body` and closing: headers that lie. */
async function rawServer(head: string, body: Buffer): Promise<Server> {
  const requests: string[] = [];
  const server = net.createServer((sock) => {
    sock.once('data', (d) => {
      requests.push(d.toString().split('\r\n')[0]);
      sock.end(Buffer.concat([Buffer.from(head), body]));
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** One download of `pathname` on local port `port`, pinned to `data`'s digest, into the cache's places for it. */
function fetchFrom(port: number, pathname: string, data: Buffer) {
  return downloadVerified({
    url: `http://127.0.0.1:${port}${pathname}`,
    sha256: sha(data),
    ...files(sha(data)),
    signal: new AbortController().signal,
    ...quick,
  });
}

function files(sha256: string) {
  return { target: path.join(tmp, 'sha256', sha256), partial: path.join(tmp, 'partial', `${sha256}.part`) };
}

const exists = (f: string) =>
  fs.stat(f).then(
    () => true,
    () => false,
  );

/** What a rejection must be: a sifkit error with this exit code and a one-line message matching `re`. */
async function refusedWith(p: Promise<unknown>, exit: number, re: RegExp): Promise<void> {
  const e: unknown = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(isSifkitError(e) ? [e.exitCode, e.message.includes('\n'), e.message] : e).toEqual([
    exit,
    false,
    expect.stringMatching(re),
  ]);
}

describe('redirects', () => {
  it('follows a redirect to another host (http declared) and checks what it gets', async () => {
    const s = await serve((req, res, port) => {
      if (req.headers.host?.startsWith('127.0.0.1'))
        res.writeHead(302, { Location: `http://localhost:${port}/real` }).end();
      else res.writeHead(200, { 'Content-Length': FILE.length }).end(FILE);
    });
    try {
      const r = await fetchFrom(s.port, '/moved', FILE);
      expect(r.requests).toBe(2);
      expect(s.requests).toEqual([`127.0.0.1:${s.port} /moved`, `localhost:${s.port} /real`]);
      expect(sha(await fs.readFile(files(sha(FILE)).target))).toBe(sha(FILE));
    } finally {
      await s.close();
    }
  });

  it('refuses a redirect loop after 5 hops in one line (exit 1), keeping nothing', async () => {
    const s = await serve((req, res) => res.writeHead(301, { Location: req.url === '/a' ? '/b' : '/a' }).end());
    try {
      await refusedWith(fetchFrom(s.port, '/a', FILE), 1, /^http:\/\/127\.0\.0\.1:\d+\/a: more than 5 redirects$/);
      expect(s.requests).toHaveLength(6);
      expect(await exists(files(sha(FILE)).target)).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('over https (a certificate the CLI trusts): follows https to https, refuses https to http (exit 3)', async () => {
    const { certFile, ...tls } = await localhostCert(tmp);
    const plain = await serve((_req, res) => res.writeHead(200, { 'Content-Length': FILE.length }).end(FILE));
    const s = await serve((req, res) => {
      if (req.url === '/good') res.writeHead(302, { Location: '/file' }).end();
      else if (req.url === '/down') res.writeHead(302, { Location: `http://127.0.0.1:${plain.port}/file` }).end();
      else res.writeHead(200, { 'Content-Length': FILE.length }).end(FILE);
    }, tls);
    try {
      const env = { NODE_EXTRA_CA_CERTS: certFile };
      const good = await runCli(
        [
          'fetch',
          await recipe({ a: { url: `https://127.0.0.1:${s.port}/good`, sha256: sha(FILE) } }),
          '--cache',
          path.join(tmp, 'c1'),
          '--json',
        ],
        { env },
      );
      expect([good.code, good.stderr.split('\n').filter((l) => l.startsWith('sifkit: error'))]).toEqual([0, []]);
      const bad = await runCli(
        [
          'fetch',
          await recipe({ a: { url: `https://127.0.0.1:${s.port}/down`, sha256: sha(FILE) } }),
          '--cache',
          path.join(tmp, 'c2'),
        ],
        { env },
      );
      expect(bad.code).toBe(3);
      expect(bad.stderr).toMatch(
        /^sifkit: error: https:\/\/127\.0\.0\.1:\d+\/down: redirected to http:\/\/127\.0\.0\.1:\d+, refused \(only https, or http when the declared URL is http\)$/m,
      );
      expect(plain.requests).toEqual([]);
    } finally {
      await s.close();
      await plain.close();
    }
  });
});

describe('answers that lie', () => {
  it('a Content-Length shorter than the body: only that many bytes are read, the digest is refused (exit 3), nothing kept', async () => {
    const s = await rawServer(
      `HTTP/1.1 200 OK\r\nContent-Length: ${FILE.length - 1000}\r\nConnection: close\r\n\r\n`,
      FILE,
    );
    try {
      await refusedWith(
        fetchFrom(s.port, '/f', FILE),
        3,
        /: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}$/,
      );
      expect(await exists(files(sha(FILE)).target)).toBe(false);
      expect(await exists(files(sha(FILE)).partial)).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('a Content-Length longer than the body: a cut, retried, then one line (exit 1), never under the real name', async () => {
    const s = await rawServer(
      `HTTP/1.1 200 OK\r\nContent-Length: ${FILE.length + 1000}\r\nConnection: close\r\n\r\n`,
      FILE,
    );
    try {
      await refusedWith(
        fetchFrom(s.port, '/f', FILE),
        1,
        /\/f: cut after \d+ (of \d+ )?bytes.*\(gave up after 3 attempts\)$/,
      );
      expect(s.requests).toHaveLength(3);
      expect(await exists(files(sha(FILE)).target)).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('a body sent gzip-encoded although asked for none: kept as sent (as curl keeps it); pinned to the decoded file, refused with a hint naming the encoding', async () => {
    const gz = gzipSync(FILE);
    const s = await serve((_req, res) =>
      res.writeHead(200, { 'Content-Encoding': 'gzip', 'Content-Length': gz.length }).end(gz),
    );
    try {
      await fetchFrom(s.port, '/f.tar.gz', gz);
      expect(sha(await fs.readFile(files(sha(gz)).target))).toBe(sha(gz));
      const p = fetchFrom(s.port, '/f.tar', FILE);
      await expect(p).rejects.toMatchObject({ exitCode: 3, hint: expect.stringMatching(/Content-Encoding gzip/) });
      expect(await exists(files(sha(FILE)).target)).toBe(false);
    } finally {
      await s.close();
    }
  });
});

/** A recipe under tmp whose sources are `sources` (name -> fields), written as YAML. */
async function recipe(sources: Record<string, Record<string, string>>): Promise<string> {
  // Fragments are named from the directory above the recipe's, as in docker-defs/.
  const dir = path.join(await fs.mkdtemp(path.join(tmp, 'defs-')), 'tiny');
  await fs.mkdir(dir, { recursive: true });
  const yaml = Object.entries(sources)
    .map(
      ([n, f]) =>
        `  ${n}:\n${Object.entries(f)
          .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
          .join('\n')}`,
    )
    .join('\n');
  await fs.writeFile(path.join(dir, 'recipe.yaml'), tinyRecipeText('tiny', `sources:\n${yaml}`, ''));
  const refs = Object.keys(sources)
    .map((n) => `{{ source "${n}" "/${n}.bin" }}`)
    .join(' ; ');
  await fs.writeFile(path.join(dir, 'a.docker'), `FROM scratch\nARG SERVER_PORT\nRUN ${refs}\n`);
  return dir;
}

describe('checksums and URLs written oddly', () => {
  it.each([
    ['upper case', sha(FILE).toUpperCase()],
    ['a sha256: prefix', `sha256:${sha(FILE)}`],
    ['63 digits', sha(FILE).slice(1)],
    ['65 digits', `${sha(FILE)}0`],
  ])('a checksum in %s is refused when the recipe loads, in one line (exit 2)', async (_what, digest) => {
    const dir = await recipe({ a: { url: 'http://127.0.0.1:9/f', sha256: digest } });
    await refusedWith(loadRecipe(dir), 2, /sources\.a\.sha256.*64 lower-case hex digits/);
  });

  const good = (port: number) => `http://127.0.0.1:${port}/files/f.bin`;
  it.each([
    ['user info', (p: number) => `http://user:secret@127.0.0.1:${p}/files/f.bin`, /holds a user name or password/],
    [
      'a host hidden behind user info',
      (p: number) => `http://example.org@127.0.0.1:${p}/files/f.bin`,
      /holds a user name or password/,
    ],
    ['a fragment', (p: number) => `${good(p)}#sha256=x`, /has a fragment/],
    [
      '.. segments',
      (p: number) => `http://127.0.0.1:${p}/files/x/../f.bin`,
      /is not written as the URL it fetches \("http:\/\/127\.0\.0\.1:\d+\/files\/f\.bin"\)/,
    ],
    ['a . segment', (p: number) => `http://127.0.0.1:${p}/files/./f.bin`, /is not written as the URL it fetches/],
    [
      'an IDN host',
      () => 'https://b\u00fccher.example/f.bin',
      /is not written as the URL it fetches \("https:\/\/xn--bcher-kva\.example\/f\.bin"\)/,
    ],
    [
      'a percent-encoded host',
      () => 'https://%65vil.example/f.bin',
      /is not written as the URL it fetches \("https:\/\/evil\.example\/f\.bin"\)/,
    ],
    ['an upper-case host', () => 'https://EXAMPLE.org/f.bin', /is not written as the URL it fetches/],
  ])('a URL with %s is refused before any request, in one line (exit 2)', async (_what, url, re) => {
    const s = await serve((_req, res) => res.writeHead(200, { 'Content-Length': FILE.length }).end(FILE));
    try {
      const src: ResolvedSource = {
        name: 'a',
        kind: 'file',
        submodules: false,
        url: url(s.port),
        sha256: sha(FILE),
        servedPath: `sources/sha256/${sha(FILE)}`,
      };
      await refusedWith(
        fetchSources([src], { cache: tmp, signal: new AbortController().signal, download: quick }),
        2,
        re,
      );
      expect(s.requests).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('the exit code and line through the CLI (a URL with user info)', async () => {
    const r = await runCli([
      'fetch',
      await recipe({ a: { url: 'http://u:p@127.0.0.1:9/f', sha256: sha(FILE) } }),
      '--cache',
      path.join(tmp, 'c'),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^sifkit: error: source a: "http:\/\/u:p@127\.0\.0\.1:9\/f" holds a user name or password: never in a recipe$/m,
    );
  });
});

describe('two sources, one name or one digest', () => {
  it('one file name with two digests: two cache entries, each checked; one digest under two names: one download', async () => {
    const other = seededBytes(SEED + 7, 1000);
    const s = await serve((req, res) => {
      const body = req.url?.startsWith('/x/') ? FILE : req.url?.startsWith('/y/') ? other : undefined;
      if (!body) res.writeHead(404).end();
      else res.writeHead(200, { 'Content-Length': body.length }).end(body);
    });
    const src = (name: string, url: string, body: Buffer): ResolvedSource => ({
      name,
      kind: 'file',
      submodules: false,
      url,
      sha256: sha(body),
      servedPath: `sources/sha256/${sha(body)}`,
    });
    try {
      const u = `http://127.0.0.1:${s.port}`;
      const got = await fetchSources(
        [src('a', `${u}/x/f.tgz`, FILE), src('b', `${u}/y/f.tgz`, other), src('c', `${u}/x/copy/f.tgz`, FILE)],
        { cache: tmp, signal: new AbortController().signal, download: quick },
      );
      // Every name answered; c's file came with a's.
      expect(got.map((g) => [g.name, g.sha256, g.how, g.requests])).toEqual([
        ['a', sha(FILE), 'fetched', 1],
        ['b', sha(other), 'fetched', 1],
        ['c', sha(FILE), 'cached', 0],
      ]);
      expect(s.requests.map((r) => r.split(' ')[1]).sort()).toEqual(['/x/f.tgz', '/y/f.tgz']);
      expect(sha(await fs.readFile(path.join(tmp, 'sha256', sha(FILE))))).toBe(sha(FILE));
      expect(sha(await fs.readFile(path.join(tmp, 'sha256', sha(other))))).toBe(sha(other));
    } finally {
      await s.close();
    }
  });
});

describe('stopped and full', () => {
  it('stopped at half, rerun against a server without Range: starts again, never a partial under the real name', async () => {
    let first = true;
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': FILE.length });
      // The first answer stops at half and waits (for the stop); later ones send it all, Range or not.
      if (first) res.write(FILE.subarray(0, HALF));
      else res.end(FILE);
      first = false;
    });
    const f = files(sha(FILE));
    try {
      const stop = new AbortController();
      const stopped = downloadVerified({
        url: `http://127.0.0.1:${s.port}/f`,
        sha256: sha(FILE),
        ...f,
        signal: stop.signal,
        ...quick,
        onBytes: (n) => n >= HALF && stop.abort(),
      });
      await refusedWith(stopped, 130, /interrupted/);
      expect(await exists(f.target)).toBe(false);
      expect((await fs.stat(f.partial)).size).toBeGreaterThan(0);
      const again = await downloadVerified({
        url: `http://127.0.0.1:${s.port}/f`,
        sha256: sha(FILE),
        ...f,
        signal: new AbortController().signal,
        ...quick,
      });
      expect(again.resumedFrom).toBe(0);
      expect(s.requests[1]).toMatch(/ bytes=\d+-$/);
      expect(sha(await fs.readFile(f.target))).toBe(sha(FILE));
      expect(await exists(f.partial)).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('a cache disk that fills mid-download (a 256 KiB tmpfs): one line (exit 1) at once, no retry, nothing kept', async () => {
    const mnt = path.join(tmp, 'small');
    await fs.mkdir(mnt);
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'sifkit-h63-full', mnt]);
    const s = await serve((_req, res) => res.writeHead(200, { 'Content-Length': FILE.length }).end(FILE));
    try {
      const f = {
        target: path.join(mnt, 'sha256', sha(FILE)),
        partial: path.join(mnt, 'partial', `${sha(FILE)}.part`),
      };
      await refusedWith(
        downloadVerified({
          url: `http://127.0.0.1:${s.port}/f`,
          sha256: sha(FILE),
          ...f,
          signal: new AbortController().signal,
          ...quick,
        }),
        1,
        /\/f: cannot write to .*\/small\/partial after \d+ bytes \(ENOSPC\); nothing was kept$/,
      );
      expect(s.requests).toHaveLength(1);
      expect(await fs.readdir(path.join(mnt, 'partial'))).toEqual([]);
      expect(await exists(f.target)).toBe(false);
    } finally {
      await s.close();
      await exec('umount', [mnt]);
    }
  });
});
