/**
 * A local HTTPS git server standing in for GitHub: git's own
 * `git http-backend` (smart HTTP, protocol v2) behind a Node https server
 * with a throwaway self-signed certificate made by openssl. Repositories
 * are bare repositories under `root`; every request is counted. Git
 * clients trust the certificate through GIT_SSL_CAINFO (`caFile`), so
 * sifkit's `http.sslVerify=true` is exercised, not switched off.
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { localhostCert } from './tls';

const run = promisify(execFile);

export interface GitServer {
  /** https://127.0.0.1:PORT */
  url: string;
  /** Where the bare repositories are (NAME.git). */
  root: string;
  /** The certificate, for GIT_SSL_CAINFO. */
  caFile: string;
  /** Requests seen, as `METHOD path?query`. */
  requests: string[];
  close(): Promise<void>;
}

/** Runs git with a fixed identity and dates, so commits are the same on every run. */
export async function git(args: string[], cwd: string, date = '2026-01-01T00:00:00Z'): Promise<string> {
  const { stdout } = await run('git', args, {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'sifkit test',
      GIT_AUTHOR_EMAIL: 'test@sifkit.invalid',
      GIT_COMMITTER_NAME: 'sifkit test',
      GIT_COMMITTER_EMAIL: 'test@sifkit.invalid',
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
      GIT_CONFIG_NOSYSTEM: '1',
      HOME: cwd,
    },
  });
  return stdout.trim();
}

export async function startGitServer(dir: string): Promise<GitServer> {
  const root = path.join(dir, 'repos');
  await fs.mkdir(root, { recursive: true });
  const { key, cert, certFile: caFile } = await localhostCert(dir, 2);
  const requests: string[] = [];
  const server = https.createServer({ key, cert, minVersion: 'TLSv1.2' }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://127.0.0.1');
    requests.push(`${req.method} ${u.pathname}${u.search}`);
    // git http-backend is a CGI program: the request goes in as variables and stdin.
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_NOSYSTEM: '1',
        HOME: dir,
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(u.pathname),
        QUERY_STRING: u.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        REMOTE_ADDR: '127.0.0.1',
      },
      // Its complaints (a refused want) are the client's to report, not the test log's.
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let started = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (started) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      started = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => {
      if (!started) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    root,
    caFile,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
