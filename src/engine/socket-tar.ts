/**
 * The engine's tar answers (an image's `docker save`, a container's
 * export) read straight off its socket, not through dockerode's HTTP
 * client: they are the answers sifkit reads whole, and an image is
 * gigabytes. Node's HTTP client copies each body piece its parser finds
 * (about 32 KiB, between chunked-encoding frames) into a buffer of its
 * own and runs a round of stream calls per piece. Here the socket reads
 * straight into 1 MiB buffers, which go on to the readers as they are:
 * no copy in node, and a thirtieth of the calls.
 *
 * The request is HTTP/1.0, so the engine sends the body as it is (not
 * chunked) and ends it by closing the connection. A close then proves
 * nothing (a daemon that dies halfway closes too), so the tar's own end
 * is checked (util/tar-end.ts): a stream cut short is an error, never a
 * smaller image. Only plain connections take this way (a unix socket,
 * tcp without TLS); docker.ts gives the others to dockerode.
 */
import * as net from 'node:net';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { Readable } from 'node:stream';
import { OperationError } from '../errors';
import { TarEnd } from '../util/tar-end';

/** Where a plain engine answers: a unix socket, or a host and port. */
export type PlainEndpoint = { socketPath: string } | { host: string; port: number };

/** Bytes per buffer handed on. */
const CHUNK = 1 << 20;
/** An answer's head (status line and headers) longer than this is not an engine's. */
const MAX_HEAD = 64 * 1024;
/** How much of an error answer's body is kept for its message. */
const MAX_ERROR_BODY = 64 * 1024;

/** The request, every value through node's own header checks (a CR or LF in one would start another header). */
function request(path: string, host: string, headers: Record<string, string>): string {
  if (!/^\/[\x21-\x7e]*$/.test(path))
    throw new OperationError('bad-engine-path', `not a request path: ${JSON.stringify(path)}`);
  const lines = [`GET ${path} HTTP/1.0`, `Host: ${host}`];
  for (const [k, v] of Object.entries(headers)) {
    try {
      validateHeaderName(k);
      validateHeaderValue(k, v);
    } catch {
      throw new OperationError(
        'bad-engine-header',
        `request header ${JSON.stringify(k)} holds a character HTTP does not allow`,
      );
    }
    lines.push(`${k}: ${v}`);
  }
  return lines.join('\r\n') + '\r\n\r\n';
}

/** An error answer as dockerode gives one (statusCode, json), so engine/client.ts maps both alike. */
function answerError(status: number, body: Buffer): Error {
  const text = body.toString('utf8');
  let json: { message?: unknown } | null = null;
  try {
    json = JSON.parse(text) as { message?: unknown };
  } catch {
    /* not JSON: its text is the message */
  }
  const said = typeof json?.message === 'string' ? json.message : text.trim();
  return Object.assign(new Error(`(HTTP code ${status}) unexpected - ${said}`), { statusCode: status, json });
}

/**
 * GETs `path` (a tar) from `endpoint`: resolves with the body once the
 * answer's head says 200, rejects with the engine's error otherwise. The
 * body errs if the tar is cut short; destroying it closes the connection.
 * `what` names the stream in errors ("image sha256:…").
 */
export function getTar(
  endpoint: PlainEndpoint,
  path: string,
  what: string,
  headers: Record<string, string> = {},
): Promise<Readable> {
  const host =
    'socketPath' in endpoint
      ? 'docker'
      : `${net.isIPv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
  return new Promise<Readable>((resolve, reject) => {
    // Thrown here, a bad path or header rejects: nothing was sent.
    const req = request(path, host, headers);
    let buf = Buffer.allocUnsafeSlow(CHUNK);
    let used = 0;
    let phase: 'head' | 'body' | 'error' | 'done' = 'head';
    let status = 0;
    let length: number | undefined;
    let received = 0;
    const errorBody: Buffer[] = [];
    const tar = new TarEnd();
    const out = new Readable({
      highWaterMark: CHUNK,
      read: () => void sock.resume(),
      destroy: (e, cb) => {
        sock.destroy();
        cb(e);
      },
    });
    const fail = (e: Error) => {
      if (phase === 'done') return;
      const wasBody = phase === 'body';
      phase = 'done';
      sock.destroy();
      if (wasBody) out.destroy(e);
      else reject(e);
    };
    /** Hands a full (or the last) buffer on; false: the readers want no more for now. */
    const hand = (b: Buffer): boolean => {
      received += b.length;
      try {
        tar.feed(b);
      } catch (e) {
        fail(new OperationError('bad-engine-answer', `the engine's ${what} is ${(e as Error).message}`));
        return false;
      }
      return out.push(b);
    };
    /** How far the head was searched for its end: an answer that comes a byte at a time is searched once. */
    let searched = 0;
    const head = (): boolean => {
      const end = buf.subarray(0, used).indexOf('\r\n\r\n', Math.max(0, searched - 3));
      searched = used;
      if (end < 0) {
        if (used >= MAX_HEAD)
          fail(new OperationError('bad-engine-answer', `the engine's answer for ${what} has no end to its head`));
        return true;
      }
      const [statusLine, ...fields] = buf.toString('latin1', 0, end).split('\r\n');
      status = Number(/^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine)?.[1] ?? NaN);
      const field = (name: string) =>
        fields
          .find((f) => f.slice(0, f.indexOf(':')).trim().toLowerCase() === name)
          ?.replace(/^[^:]*:/, '')
          .trim();
      const chunked = field('transfer-encoding');
      const len = field('content-length');
      if (!Number.isInteger(status) || chunked !== undefined || (len !== undefined && !/^\d+$/.test(len))) {
        fail(
          new OperationError(
            'bad-engine-answer',
            `the engine's answer for ${what} is not plain HTTP/1.0 (${JSON.stringify(statusLine.slice(0, 80))}${chunked !== undefined ? ', chunked' : ''})`,
          ),
        );
        return false;
      }
      length = len === undefined ? undefined : Number(len);
      const rest = buf.subarray(end + 4, used);
      if (status !== 200) {
        phase = 'error';
        errorBody.push(Buffer.from(rest));
        used = 0;
        return true;
      }
      phase = 'body';
      buf = Buffer.allocUnsafeSlow(CHUNK);
      used = rest.copy(buf);
      resolve(out);
      return true;
    };
    const sock = net.connect({
      ...('socketPath' in endpoint ? { path: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port }),
      onread: {
        // Each read lands in the rest of the current buffer: the bytes are never copied again in node.
        buffer: () => buf.subarray(used),
        callback: (n: number) => {
          used += n;
          if (phase === 'head') return head();
          if (phase === 'error') {
            if (errorBody.reduce((s, b) => s + b.length, 0) < MAX_ERROR_BODY)
              errorBody.push(Buffer.from(buf.subarray(0, used)));
            used = 0;
            return true;
          }
          if (phase !== 'body' || used < CHUNK) return true;
          const full = buf;
          buf = Buffer.allocUnsafeSlow(CHUNK);
          used = 0;
          return hand(full);
        },
      },
    });
    sock.write(req);
    sock.resume();
    sock.on('end', () => {
      if (phase === 'head')
        return fail(
          new OperationError('bad-engine-answer', `the engine closed the connection before it answered for ${what}`),
        );
      if (phase === 'error') {
        phase = 'done';
        return reject(answerError(status, Buffer.concat(errorBody)));
      }
      if (phase !== 'body') return;
      if (used > 0) hand(buf.subarray(0, used));
      if (phase !== 'body') return;
      const cut = length !== undefined && received !== length ? `it ends at byte ${received} of ${length}` : tar.cut;
      if (cut)
        return fail(
          new OperationError('engine-stream-cut', `the engine's ${what} stopped short: ${cut}`, {
            hint: 'the engine stopped or the connection dropped; run the command again',
          }),
        );
      phase = 'done';
      out.push(null);
    });
    sock.on('error', fail);
    sock.on('close', () =>
      fail(new OperationError('engine-stream-cut', `the engine's connection closed in the middle of ${what}`)),
    );
  });
}
