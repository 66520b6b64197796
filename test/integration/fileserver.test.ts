import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startFileServer, type FileServer } from '../../src/fileserver/server';

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
    server = await startFileServer(root, log());
  });
  afterAll(async () => {
    await server.close();
  });

  it('listens on 127.0.0.1 on a free port with a 32-hex secret prefix', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.prefix).toMatch(/^[0-9a-f]{32}$/);
  });
  it('serves files under the prefix, and symlinks that stay inside', async () => {
    expect(await request(server.port, 'GET', `/${server.prefix}/cpe.tar`)).toEqual({ status: 200, body: 'licensed bytes' });
    expect((await request(server.port, 'GET', `/${server.prefix}/sub/rocminfo`)).body).toBe('tool');
    expect((await request(server.port, 'GET', `/${server.prefix}/inside-link`)).status).toBe(200);
  });
  it.each([
    ['no prefix', '/cpe.tar'],
    ['wrong prefix', '/0123456789abcdef0123456789abcdef/cpe.tar'],
    ['dot-dot', '/PREFIX/../secret.txt'],
    ['encoded dots', '/PREFIX/%2e%2e/secret.txt'],
    ['encoded slash', '/PREFIX/sub%2f..%2f..%2fsecret.txt'],
    ['a directory listing', '/PREFIX/sub'],
    ['the root listing', '/PREFIX/'],
    ['a symlink leading out', '/PREFIX/escape'],
    ['a NUL byte', '/PREFIX/cpe.tar%00'],
    ['a backslash', '/PREFIX/sub%5c..%5c..%5csecret.txt'],
  ])('answers 404 to %s', async (_what, p) => {
    const r = await request(server.port, 'GET', p.replace('PREFIX', server.prefix));
    expect(r.status).toBe(404);
    expect(r.body).not.toContain('do not serve');
  });
  it.each(['POST', 'PUT', 'DELETE'])('refuses %s with 405', async (m) => {
    expect((await request(server.port, m, `/${server.prefix}/cpe.tar`)).status).toBe(405);
  });
  it('logs every request without the secret prefix', async () => {
    await request(server.port, 'GET', `/${server.prefix}/cpe.tar`);
    await new Promise((r) => setTimeout(r, 50));
    const text = await fs.readFile(log(), 'utf8');
    expect(text).toMatch(/GET \/<prefix>\/cpe.tar 200 14/);
    expect(text).not.toContain(server.prefix);
  });
  it('refuses a missing directory with a clear error', async () => {
    await expect(startFileServer(path.join(root, 'nope'))).rejects.toThrow(/server files directory .* is missing/);
  });
});
