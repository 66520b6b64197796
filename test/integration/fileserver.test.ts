import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { startFileServer, type FileServer } from '../../src/fileserver/server';
import { socketKeys, uidOfSocket } from '../../src/fileserver/peer';
import { derivePort, digestOfServed, DERIVED_PORT_BASE, DERIVED_PORT_SPAN } from '../../src/fileserver/served';
import { until } from '../support/poll';

/** curl run as another local user (uid 65534): a real socket owned by a uid the server does not allow. */
function curlAs(uid: number, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'setpriv',
      [
        `--reuid=${uid}`,
        `--regid=${uid}`,
        '--clear-groups',
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        url,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () => resolve(out.trim()));
  });
}

function request(port: number, method: string, rawPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // Raw paths: http.request sends them as given, so encoded dots reach the server undecoded.
    const req = http.request({ host: '127.0.0.1', port, method, path: rawPath }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('build-time file server (real HTTP on loopback)', () => {
  let root: string;
  let outside: string;
  let server: FileServer;
  const log = () => path.join(root, '..', 'access.log');
  /** The log is written asynchronously: poll until the line is there (jest's timeout bounds it). */
  const logShows = async (line: string): Promise<void> => {
    await until(async () => (await fs.readFile(log(), 'utf8').catch(() => '')).includes(line), 10);
  };

  beforeAll(async () => {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-fs-'));
    root = path.join(base, 'served');
    outside = path.join(base, 'secret.txt');
    await fs.mkdir(path.join(root, 'sub'), { recursive: true });
    await fs.writeFile(path.join(root, 'cpe.tar'), 'licensed bytes');
    await fs.writeFile(path.join(root, 'sub', 'rocminfo'), 'tool');
    await fs.writeFile(outside, 'do not serve');
    await fs.symlink(outside, path.join(root, 'escape'));
    await fs.symlink(path.join(root, 'cpe.tar'), path.join(root, 'inside-link'));
    server = await startFileServer(root, { logFile: log() });
  });
  afterAll(async () => {
    await server.close();
  });

  it('listens on 127.0.0.1 and serves files at plain paths, and symlinks that stay inside', async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(await request(server.port, 'GET', '/cpe.tar')).toEqual({ status: 200, body: 'licensed bytes' });
    expect((await request(server.port, 'GET', '/sub/rocminfo')).body).toBe('tool');
    expect((await request(server.port, 'GET', '/inside-link')).status).toBe(200);
  });
  it.each([
    ['dot-dot', '/../secret.txt'],
    ['encoded dots', '/%2e%2e/secret.txt'],
    ['encoded slash', '/sub%2f..%2f..%2fsecret.txt'],
    ['a directory listing', '/sub'],
    ['the root listing', '/'],
    ['a symlink leading out', '/escape'],
    ['a NUL byte', '/cpe.tar%00'],
    ['a backslash', '/sub%5c..%5c..%5csecret.txt'],
  ])('answers 404 to %s', async (_what, p) => {
    const r = await request(server.port, 'GET', p);
    expect(r.status).toBe(404);
    expect(r.body).not.toContain('do not serve');
  });
  it('refuses a local user whose uid is not allowed (403, logged), found through the kernel socket table', async () => {
    const before = server.refused;
    expect(await curlAs(65534, `${server.url}cpe.tar`)).toBe('403');
    expect(server.refused).toBe(before + 1);
    await logShows('uid=65534 GET "/cpe.tar" 403');
  });
  it('serves that user once its uid is allowed', async () => {
    const s2 = await startFileServer(root, { allowUids: [0, 65534] });
    try {
      expect(await curlAs(65534, `${s2.url}cpe.tar`)).toBe('200');
    } finally {
      await s2.close();
    }
  });
  it('takes a busy preferred port no further than a free one, and says so', async () => {
    const s2 = await startFileServer(root, { preferredPort: server.port });
    try {
      expect(s2.portFallback).toBe(true);
      expect(s2.port).not.toBe(server.port);
    } finally {
      await s2.close();
    }
    await expect(startFileServer(root, { port: server.port })).rejects.toThrow(
      /cannot start the build-time file server on 127.0.0.1/,
    );
  });
  it.each(['POST', 'PUT', 'DELETE'])('refuses %s with 405', async (m) => {
    expect((await request(server.port, m, '/cpe.tar')).status).toBe(405);
  });
  it('logs every request with the client uid', async () => {
    await request(server.port, 'GET', '/cpe.tar');
    await logShows('uid=0 GET "/cpe.tar" 200 14');
  });
  it('serves declared sources alone, with no directory: the entries it was given, 404 for anything else', async () => {
    const s2 = await startFileServer(undefined, {
      extra: [{ servedPath: 'sources/sha256/abc', file: path.join(root, 'cpe.tar'), role: 'source' }],
    });
    try {
      expect(await request(s2.port, 'GET', '/sources/sha256/abc')).toEqual({ status: 200, body: 'licensed bytes' });
      for (const p of ['/cpe.tar', '/sources/sha256/abd', '/', '/../secret.txt'])
        expect((await request(s2.port, 'GET', p)).status).toBe(404);
      expect([...s2.served]).toEqual(['sources/sha256/abc']);
    } finally {
      await s2.close();
    }
  });
  it('refuses a missing directory with a clear error', async () => {
    await expect(startFileServer(path.join(root, 'nope'))).rejects.toThrow(/server files directory .* is missing/);
  });
});

describe('kernel socket table parsing (pure)', () => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:5208 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0 20 4 30 10 -1',
    '   1: 0100007F:D431 0100007F:5208 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1',
  ].join('\n');
  it('finds the uid of the socket whose local address is the client', () => {
    expect(uidOfSocket(table, socketKeys('127.0.0.1', 0xd431))).toBe(1000);
    expect(uidOfSocket(table, socketKeys('::ffff:127.0.0.1', 0x5208))).toBe(0);
    expect(uidOfSocket(table, socketKeys('127.0.0.1', 1))).toBeUndefined();
    expect(socketKeys('not-an-ip', 1)).toEqual([]);
  });
  it('derives a stable port below the ephemeral range from the served files', () => {
    const d = digestOfServed([
      { rel: 'b', sha256: '2' },
      { rel: 'a', sha256: '1' },
    ]);
    expect(d).toBe(
      digestOfServed([
        { rel: 'a', sha256: '1' },
        { rel: 'b', sha256: '2' },
      ]),
    );
    expect(d).not.toBe(
      digestOfServed([
        { rel: 'a', sha256: '1' },
        { rel: 'b', sha256: '3' },
      ]),
    );
    expect(derivePort(d)).toBeGreaterThanOrEqual(DERIVED_PORT_BASE);
    expect(derivePort(d)).toBeLessThan(DERIVED_PORT_BASE + DERIVED_PORT_SPAN);
  });
});
