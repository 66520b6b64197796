/**
 * A local HTTP server standing in for an upstream download site: serves
 * files with Range support, counts every request, and can misbehave on
 * purpose (cut a response halfway once, answer slowly, redirect a moved
 * URL), so the source cache's failure handling is tested for real.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Upstream {
  url: string;
  port: number;
  /** path -> bytes served at it */
  files: Map<string, Buffer>;
  /** Requests seen, as `METHOD path [range]`. */
  requests: string[];
  /** Paths whose next full GET is cut after half the bytes (then forgotten). */
  cutOnce: Set<string>;
  /** Paths answered at about this many bytes per 50 ms. */
  slow: Map<string, number>;
  /** Moved paths: old -> new (301). */
  moved: Map<string, string>;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const files = new Map<string, Buffer>();
  const requests: string[] = [];
  const cutOnce = new Set<string>();
  const slow = new Map<string, number>();
  const moved = new Map<string, string>();
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/';
    const range = req.headers.range;
    requests.push(`${req.method} ${p}${range ? ` ${range}` : ''}`);
    const to = moved.get(p);
    if (to) {
      res.writeHead(301, { Location: to }).end();
      return;
    }
    const body = files.get(p);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'Content-Length': body.length - start,
        'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
    } else res.writeHead(200, { 'Content-Length': body.length });
    const part = body.subarray(start);
    if (!m && cutOnce.has(p)) {
      cutOnce.delete(p);
      res.write(part.subarray(0, Math.floor(part.length / 2)), () => res.destroy());
      return;
    }
    const rate = slow.get(p);
    if (!rate) {
      res.end(part);
      return;
    }
    let at = 0;
    const tick = () => {
      if (res.destroyed) return;
      const chunk = part.subarray(at, at + rate);
      at += chunk.length;
      if (at >= part.length) res.end(chunk);
      else res.write(chunk, () => setTimeout(tick, 50));
    };
    tick();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    files,
    requests,
    cutOnce,
    slow,
    moved,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Bytes from a seeded generator (xorshift32), so a failing run can be repeated. */
export function seededBytes(seed: number, n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
