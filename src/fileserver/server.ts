/**
 * The build-time file server: serves a directory of licensed files to a
 * build on 127.0.0.1 only, on a free port, under an unguessable path
 * prefix, for as long as the build runs. GET and HEAD only, no listings,
 * nothing outside the directory (`..`, encoded dots, symlinks leading out
 * all answer 404). Every request is logged.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs, type WriteStream } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { InputError, errnoCode } from '../errors';

export interface FileServer extends AsyncDisposable {
  port: number;
  prefix: string;
  /** Base URL as the build sees it (host networking). */
  url: string;
  /** Paths (relative to the served dir) that were fetched. */
  served: Set<string>;
  close(): Promise<void>;
}

/** Resolves a request path to a real file inside root, or undefined. Exported for tests. */
export async function resolveInside(rootReal: string, prefix: string, rawUrl: string): Promise<string | undefined> {
  const q = rawUrl.indexOf('?');
  const pathname = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const head = `/${prefix}/`;
  if (!pathname.startsWith(head)) return undefined;
  let rel: string;
  try {
    rel = decodeURIComponent(pathname.slice(head.length));
  } catch {
    return undefined;
  }
  if (rel === '' || rel.includes('\0') || rel.includes('\\')) return undefined;
  const segments = rel.split('/');
  if (segments.some((s) => s === '..' || s === '.' || s === '')) return undefined;
  const candidate = path.join(rootReal, ...segments);
  let real: string;
  try {
    real = await fs.realpath(candidate);
  } catch {
    return undefined;
  }
  // A symlink may lead anywhere: only what really lies inside root is served.
  if (!real.startsWith(rootReal + path.sep)) return undefined;
  const st = await fs.stat(real).catch(() => undefined);
  return st?.isFile() ? real : undefined;
}

export async function startFileServer(dir: string, logFile?: string): Promise<FileServer> {
  let rootReal: string;
  try {
    rootReal = await fs.realpath(dir);
    if (!(await fs.stat(rootReal)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (e) {
    throw new InputError('bad-server-files', `server files directory ${dir} is missing or not a directory (${errnoCode(e) ?? (e as Error).message})`);
  }
  const prefix = randomBytes(16).toString('hex');
  const served = new Set<string>();
  const log: WriteStream | undefined = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
  const note = (req: http.IncomingMessage, status: number, bytes = 0) => {
    // The prefix is a secret for the build's duration: never logged.
    const shown = (req.url ?? '').split(prefix).join('<prefix>');
    log?.write(`${new Date().toISOString()} ${req.socket.remoteAddress} ${req.method} ${shown} ${status} ${bytes}\n`);
  };

  const server = http.createServer(async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      note(req, 405);
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const file = await resolveInside(rootReal, prefix, req.url ?? '/');
    if (!file) {
      note(req, 404);
      res.writeHead(404).end();
      return;
    }
    const st = await fs.stat(file);
    res.writeHead(200, { 'Content-Length': st.size, 'Content-Type': 'application/octet-stream' });
    if (req.method === 'HEAD') {
      note(req, 200);
      res.end();
      return;
    }
    served.add(path.relative(rootReal, file));
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    stream.on('error', () => res.destroy());
    // Logged when the response is done. A client that hangs up as soon as it
    // has every byte can close the socket before the file stream's 'end' or
    // the response's 'finish': judge by the bytes handed to the socket.
    let sent = 0;
    stream.on('data', (c: string | Buffer) => {
      sent += c.length;
    });
    res.on('close', () => note(req, res.writableFinished || sent === st.size ? 200 : 499, sent));
    stream.pipe(res);
  });
  // Port 0: the kernel picks a free port, so "port in use" cannot happen.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => (log ? log.end(resolve) : resolve()));
  };
  return { port, prefix, url: `http://localhost:${port}/${prefix}/`, served, close, [Symbol.asyncDispose]: close };
}
