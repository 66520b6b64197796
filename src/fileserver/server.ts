/**
 * The build-time file server: serves a directory of served files
 * (licensed files, tools) and declared sources from the source cache to a
 * build on 127.0.0.1 only, for as long as the build runs. GET and HEAD
 * only, no listings, nothing outside the directory (`..`, encoded dots,
 * symlinks leading out all answer 404). Every request is logged.
 *
 * Who may fetch is decided by the kernel, not by a secret in the URL: a
 * secret would have to reach the build as a build argument, and the
 * classic builder writes every argument in scope into the history and the
 * cache key of every later step (README, "Serving licensed files"). For
 * each connection the server looks the client's socket up in
 * /proc/net/tcp and serves only sockets owned by an allowed uid (the uid
 * the engine's build containers run as, 0 by default); any other local
 * user gets 403, and the attempt is logged.
 *
 * One server can serve several builds of the same served files at once
 * (shared.ts): each adds the sources it declares (`addEntries`) and its
 * own access log (`attachLog`). Every build connects from the host's
 * network as the same uid, so a request cannot be told apart by build:
 * each attached log gets every request made while it was attached, and
 * lines that say which other builds were served meanwhile.
 */
import { createReadStream, createWriteStream, promises as fs, type WriteStream } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { InputError, OperationError, errnoCode } from '../errors';
import { peerUid } from './peer';

export interface FileServerOptions {
  logFile?: string;
  /** A port the caller insists on: taken or fail. */
  port?: number;
  /** A port to try first (derived from the served files); a free one is taken when it is busy. */
  preferredPort?: number;
  /** Uids whose sockets may fetch (default [0], the engine's build containers). */
  allowUids?: number[];
  /** How the client's uid is found (tests give their own; default: the kernel's socket tables). */
  uidOf?: (address: string, port: number) => Promise<number | undefined>;
  /** Files served besides the directory, by exact path (role `source`: declared, pinned, may stay in a layer). */
  extra?: ServedEntry[];
}

/** A file served under a fixed path; the role says how the leak scan treats it. */
export interface ServedEntry {
  /** URL path without the leading slash, e.g. `sources/sha256/<hex>`. */
  servedPath: string;
  file: string;
  role: 'source';
}

export interface FileServer extends AsyncDisposable {
  /**
   * Serves these entries too, until the returned function is called; an
   * entry several callers added stays until the last of them lets go.
   */
  addEntries(entries: ServedEntry[]): () => void;
  /**
   * Logs every request to this file too, until the returned function has
   * closed it. `who` (a build's name) is written to the other attached
   * logs when it joins and leaves, and the builds already attached are
   * named at the top of its own.
   */
  attachLog(file: string, who: string): Promise<() => Promise<void>>;
  port: number;
  /** True when the preferred port was busy and another was taken (the fetching steps miss the cache). */
  portFallback: boolean;
  /** Base URL as the build sees it (host networking). */
  url: string;
  /** Paths (relative to the served dir) that were fetched. */
  served: Set<string>;
  /** Requests refused because the client's uid is not allowed. */
  refused: number;
  close(): Promise<void>;
}

/** Resolves a request path to a real file inside root, or undefined. Exported for tests. */
export async function resolveInside(rootReal: string, rawUrl: string): Promise<string | undefined> {
  const q = rawUrl.indexOf('?');
  const pathname = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  if (!pathname.startsWith('/')) return undefined;
  let rel: string;
  try {
    rel = decodeURIComponent(pathname.slice(1));
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

function listen(server: http.Server, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Serves `dir` (when given) and the `extra` entries; without a directory
 * only the extra entries exist (a recipe that serves declared sources only).
 */
export async function startFileServer(dir: string | undefined, opts: FileServerOptions = {}): Promise<FileServer> {
  let rootReal: string | undefined;
  if (dir !== undefined) {
    try {
      rootReal = await fs.realpath(dir);
      if (!(await fs.stat(rootReal)).isDirectory())
        throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (e) {
      throw new InputError(
        'bad-server-files',
        `server files directory ${dir} is missing or not a directory (${errnoCode(e) ?? (e as Error).message})`,
      );
    }
  }
  // Set explicitly: an empty list would let nobody in, a missing one everybody.
  const allow = new Set(opts.allowUids ?? [0]);
  const uidOf = opts.uidOf ?? peerUid;
  const served = new Set<string>();
  // By served path: the file, and how many callers added it (sources are content-addressed, so one path is one content).
  const extra = new Map<string, { file: string; holders: number }>();
  const addEntries = (entries: ServedEntry[]): (() => void) => {
    for (const e of entries) {
      const held = extra.get(e.servedPath);
      if (held) held.holders++;
      else extra.set(e.servedPath, { file: e.file, holders: 1 });
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const e of entries) {
        const held = extra.get(e.servedPath);
        if (held && --held.holders === 0) extra.delete(e.servedPath);
      }
    };
  };
  addEntries(opts.extra ?? []);
  let refused = 0;
  // Known once listening; a log is attached only then.
  let port = 0;
  const logs = new Map<WriteStream, string>();
  const stamp = () => new Date().toISOString();
  if (opts.logFile) logs.set(createWriteStream(opts.logFile, { flags: 'a' }), '');
  const note = (req: http.IncomingMessage, uid: number | undefined, status: number, bytes = 0) => {
    const line = `${stamp()} ${req.socket.remoteAddress}:${req.socket.remotePort} uid=${uid ?? '?'} ${req.method} ${JSON.stringify(req.url ?? '')} ${status} ${bytes}\n`;
    for (const log of logs.keys()) log.write(line);
  };
  const tellOthers = (self: WriteStream, line: string) => {
    for (const log of logs.keys()) if (log !== self) log.write(line);
  };
  const attachLog = async (file: string, who: string): Promise<() => Promise<void>> => {
    const log = createWriteStream(file, { flags: 'a' });
    await new Promise<void>((resolve, reject) => {
      log.once('open', () => resolve());
      log.once('error', reject);
    });
    const others = [...logs.values()].filter(Boolean);
    log.write(
      `# ${stamp()} ${who}: requests on 127.0.0.1:${port} while ${who} builds${others.length ? `; also building with it now: ${others.join(', ')} (a request here may be theirs)` : ''}\n`,
    );
    tellOthers(log, `# ${stamp()} ${who} starts building with this server: requests from here on may be ${who}'s\n`);
    logs.set(log, who);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      logs.delete(log);
      tellOthers(log, `# ${stamp()} ${who} ended\n`);
      await new Promise<void>((resolve) => log.end(resolve));
    };
  };

  const answer = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const uid = await uidOf(req.socket.remoteAddress ?? '', req.socket.remotePort ?? 0).catch(() => undefined);
    if (uid === undefined || !allow.has(uid)) {
      refused++;
      note(req, uid, 403);
      res.writeHead(403).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      note(req, uid, 405);
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const file =
      extra.get((req.url ?? '/').slice(1))?.file ??
      (rootReal === undefined ? undefined : await resolveInside(rootReal, req.url ?? '/'));
    if (!file) {
      note(req, uid, 404);
      res.writeHead(404).end();
      return;
    }
    const st = await fs.stat(file);
    res.writeHead(200, { 'Content-Length': st.size, 'Content-Type': 'application/octet-stream' });
    if (req.method === 'HEAD') {
      note(req, uid, 200);
      res.end();
      return;
    }
    served.add(
      extra.has((req.url ?? '/').slice(1)) || rootReal === undefined
        ? (req.url ?? '/').slice(1)
        : path.relative(rootReal, file),
    );
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    stream.on('error', () => res.destroy());
    // Logged when the response is done. A client that hangs up as soon as it
    // has every byte can close the socket before the file stream's 'end' or
    // the response's 'finish': judge by the bytes handed to the socket.
    let sent = 0;
    stream.on('data', (c: string | Buffer) => {
      sent += c.length;
    });
    res.on('close', () => note(req, uid, res.writableFinished || sent === st.size ? 200 : 499, sent));
    stream.pipe(res);
  };
  // A failure while answering (the file went away) ends that response, never the process.
  const server = http.createServer((req, res) => void answer(req, res).catch(() => res.destroy()));
  let portFallback = false;
  if (opts.port !== undefined) {
    await listen(server, opts.port).catch((e) => {
      throw new OperationError(
        'server-port',
        `cannot start the build-time file server on 127.0.0.1:${opts.port} (${errnoCode(e) ?? (e as Error).message})`,
        { hint: 'give another --server-port, or none to derive one' },
      );
    });
  } else {
    const preferred = opts.preferredPort ?? 0;
    try {
      await listen(server, preferred);
    } catch (e) {
      if (errnoCode(e) !== 'EADDRINUSE' || preferred === 0) throw e;
      // Port 0: the kernel picks a free one. The build still works; the
      // fetching steps and what follows them miss the cache this once.
      portFallback = true;
      await listen(server, 0);
    }
  }
  port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...logs.keys()].map((log) => new Promise<void>((resolve) => log.end(resolve))));
    logs.clear();
  };
  return {
    addEntries,
    attachLog,
    port,
    portFallback,
    url: `http://127.0.0.1:${port}/`,
    served,
    get refused() {
      return refused;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
