/**
 * The engine's tar answers read off its socket (engine/socket-tar.ts):
 * against the real engine, the bytes `docker save` and `docker export`
 * give, in 1 MiB buffers, and the engine's own error for an image it lacks; against a
 * local server speaking HTTP/1.0 on a unix socket and on tcp, what a real
 * engine could do wrong halfway (die mid-member, between members, answer
 * chunked, lie about the length, never end its head), each one line and
 * never a shorter image.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import type * as tar from 'tar-stream';
import { engineFailure } from '../../src/engine/client';
import { dockerEngine, plainEndpoint } from '../../src/engine/docker';
import { getTar } from '../../src/engine/socket-tar';
import { BUSYBOX, TEST_LABEL, engine, runId } from '../support/engine';
import { tarBuffer } from '../support/archives';

jest.setTimeout(60_000);

/** Every chunk of a stream, and how it ended. */
async function drain(s: Readable): Promise<{ chunks: Buffer[]; error?: Error }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of s) chunks.push(c as Buffer);
    return { chunks };
  } catch (e) {
    return { chunks, error: e as Error };
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('the save stream off the real engine', () => {
  it('gives the bytes `docker save` gives, in 1 MiB buffers (not the HTTP parser’s pieces)', async () => {
    const id = execFileSync('docker', ['image', 'inspect', '-f', '{{.Id}}', BUSYBOX]).toString().trim();
    const cli = execFileSync('docker', ['save', id], { maxBuffer: 1 << 30 });
    const { chunks, error } = await drain(await engine.saveImage(id));
    expect(error).toBeUndefined();
    expect(sha(Buffer.concat(chunks))).toBe(sha(cli));
    expect(cli.length).toBeGreaterThan(2 << 20);
    expect(chunks.slice(0, -1).every((c) => c.length === 1 << 20)).toBe(true);
  });

  it("a container's export comes the same way: the bytes `docker export` gives, in 1 MiB buffers", async () => {
    const c = await engine.createContainer({
      image: BUSYBOX,
      entrypoint: ['/sifkit-export-only'],
      cmd: [],
      labels: { [TEST_LABEL]: runId },
      network: 'disabled',
    });
    try {
      const cli = execFileSync('docker', ['export', c.id], { maxBuffer: 1 << 30 });
      const { chunks, error } = await drain(await c.export());
      expect(error).toBeUndefined();
      expect(sha(Buffer.concat(chunks))).toBe(sha(cli));
      expect(chunks.slice(0, -1).every((b) => b.length === 1 << 20)).toBe(true);
    } finally {
      await c.remove();
    }
  });

  it("an image the engine lacks is the engine's error, mapped as dockerode's are: one line", async () => {
    const e = await engine.saveImage('sifkittest/no-such-image:never').then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ statusCode: 404 });
    const mapped = engineFailure(e);
    expect(mapped).toMatchObject({ code: 'engine-not-found' });
    // The daemon's own words ("reference does not exist" here), as dockerode's errors give them.
    expect(mapped?.message).toMatch(/^the Docker engine has no such object \(HTTP 404\): \S/);
    expect(mapped?.message).not.toMatch(/\n/);
  });
});

/** A local server answering each connection with `answer` (after the request's head); what each request said. */
async function server(answer: (sock: net.Socket) => void, where: 'unix' | 'tcp') {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-socket-tar-'));
  const requests: string[] = [];
  const closed: Array<Promise<void>> = [];
  const srv = net.createServer((sock) => {
    closed.push(new Promise((r) => sock.on('close', () => r())));
    let head = '';
    sock.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n') && !requests.includes(head)) {
        requests.push(head);
        answer(sock);
      }
    });
    sock.on('error', () => undefined);
  });
  const socketPath = path.join(dir, 'engine.sock');
  await new Promise<void>((r) => (where === 'unix' ? srv.listen(socketPath, r) : srv.listen(0, '127.0.0.1', r)));
  const endpoint =
    where === 'unix' ? { socketPath } : { host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port };
  return {
    endpoint,
    requests,
    closed,
    close: async () => {
      await new Promise((r) => srv.close(r));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

const HEAD = 'HTTP/1.0 200 OK\r\nContent-Type: application/x-tar\r\n\r\n';

describe('which connections are read off the socket', () => {
  it('plain ones: a unix socket (given or found), tcp to a host and port', async () => {
    expect(await plainEndpoint({ protocol: 'http', socketPath: '/run/d.sock' })).toEqual({ socketPath: '/run/d.sock' });
    expect(await plainEndpoint({ protocol: 'http', socketPath: async () => '/run/e.sock' })).toEqual({
      socketPath: '/run/e.sock',
    });
    expect(await plainEndpoint({ protocol: 'http', host: 'build-1', port: '2375' })).toEqual({
      host: 'build-1',
      port: 2375,
    });
  });

  it("not TLS, ssh, a path prefix, a caller's agent, nor a host dockerode would parse as a URL: those stay dockerode's", async () => {
    for (const m of [
      { protocol: 'https', host: 'build-1', port: 2376 },
      { protocol: 'ssh', host: 'build-1', port: 22 },
      { protocol: 'http', host: 'build-1', port: 2375, pathPrefix: '/docker' },
      { protocol: 'http', socketPath: '/run/d.sock', agent: {} },
      { protocol: 'http', host: 'http://build-1', port: 2375 },
      { protocol: 'http', host: 'build-1', port: 'x' },
    ])
      expect(await plainEndpoint(m)).toBeUndefined();
  });
});

describe('the save stream off a server that does what a real engine could do wrong', () => {
  let image: Buffer;
  beforeAll(async () => {
    image = await tarBuffer([
      { header: { name: 'l1/layer.tar', type: 'file', size: 3 << 20 } as tar.Header, body: Buffer.alloc(3 << 20, 1) },
      { header: { name: 'manifest.json', type: 'file', size: 2 } as tar.Header, body: Buffer.from('[]') },
    ]);
  });

  /** The stream a server answering `bytes` (then closing) gives, drained. */
  const answered = async (bytes: Buffer | string) => {
    const s = await server((sock) => sock.end(bytes), 'unix');
    try {
      const got = await getTar(s.endpoint, '/images/x/get', 'image x').then(drain, (e: Error) => ({
        chunks: [],
        error: e,
        rejected: true,
      }));
      return got;
    } finally {
      await s.close();
    }
  };

  it('an answer whose head comes a byte at a time is read like any other', async () => {
    const head = Buffer.from(HEAD);
    const s = await server((sock) => {
      let i = 0;
      const step = () => {
        if (i < head.length) sock.write(head.subarray(i, ++i), step);
        else sock.end(image);
      };
      step();
    }, 'unix');
    try {
      const { chunks, error } = await drain(await getTar(s.endpoint, '/images/x/get', 'image x'));
      expect(error).toBeUndefined();
      expect(Buffer.concat(chunks).equals(image)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('a whole answer is the whole tar', async () => {
    const { chunks, error } = await answered(Buffer.concat([Buffer.from(HEAD), image]));
    expect(error).toBeUndefined();
    expect(Buffer.concat(chunks).equals(image)).toBe(true);
  });

  it.each([
    ['inside a member', 5000, /stopped short: it ends at byte 5000, inside the member whose header is at byte 0$/],
    [
      'inside a header',
      (3 << 20) + 512 + 100,
      /stopped short: it ends at byte \d+, inside the header at byte 3146240$/,
    ],
    ['after a member, before the end block', (3 << 20) + 512 * 3, /before the end-of-archive block$/],
  ])('an engine that dies %s: an error, never a shorter image', async (_what, at, message) => {
    const { error } = await answered(Buffer.concat([Buffer.from(HEAD), image.subarray(0, at)]));
    expect(error).toMatchObject({ code: 'engine-stream-cut', message });
    expect(error?.message).toMatch(/^the engine's image x stopped short/);
  });

  it('an answer shorter than its Content-Length is cut, whatever the tar says', async () => {
    const { error } = await answered(
      `HTTP/1.0 200 OK\r\nContent-Length: ${image.length + 10}\r\n\r\n${image.toString('latin1')}`,
    );
    expect(error).toMatchObject({
      code: 'engine-stream-cut',
      message: expect.stringMatching(/it ends at byte \d+ of \d+$/),
    });
  });

  it.each([
    ['a chunked answer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', /chunked\)$/],
    ['a status line that is not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', /is not plain HTTP\/1\.0 \("SSH-2\.0-OpenSSH"\)$/],
    ['a head that never ends', `HTTP/1.0 200 OK\r\nX: ${'a'.repeat(70_000)}`, /has no end to its head$/],
    ['a close before any answer', '', /closed the connection before it answered for image x$/],
    ['a header that is not a tar', `${HEAD}${'x'.repeat(1024)}`, /is not a tar: a bad header checksum at byte 0$/],
  ])('%s is a one-line error', async (_what, bytes, message) => {
    const { error } = await answered(bytes);
    expect(error).toMatchObject({ code: 'bad-engine-answer', message });
  });

  it("an error answer carries the status and the engine's JSON, as dockerode's do", async () => {
    const { error } = await answered(
      'HTTP/1.0 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n{"message":"disk full on the engine"}\n',
    );
    expect(error).toMatchObject({ statusCode: 500, json: { message: 'disk full on the engine' } });
    expect(engineFailure(error)?.message).toMatch(/disk full on the engine/);
  });

  it('a reader that gives up closes the connection', async () => {
    const s = await server((sock) => {
      sock.write(HEAD);
      sock.write(image.subarray(0, 2 << 20));
    }, 'unix');
    try {
      const body = await getTar(s.endpoint, '/images/x/get', 'image x');
      await new Promise((r) => body.once('readable', r));
      body.destroy();
      await Promise.all(s.closed);
    } finally {
      await s.close();
    }
  });

  it('a header value that would start another header is refused before anything is sent', async () => {
    await expect(
      getTar({ socketPath: '/nonexistent' }, '/images/x/get', 'image x', { 'X-A': 'v\r\nX-Injected: 1' }),
    ).rejects.toMatchObject({
      code: 'bad-engine-header',
      message: 'request header "X-A" holds a character HTTP does not allow',
    });
    await expect(getTar({ socketPath: '/nonexistent' }, '/images/x y/get', 'image x')).rejects.toMatchObject({
      code: 'bad-engine-path',
    });
  });

  it('an engine on plain tcp is read the same way, the reference encoded segment by segment, the API version kept', async () => {
    const s = await server((sock) => sock.end(Buffer.concat([Buffer.from(HEAD), image])), 'tcp');
    try {
      const { port } = s.endpoint as { port: number };
      const e = dockerEngine(
        new Docker({ host: '127.0.0.1', port, protocol: 'http', version: 'v1.41' }),
        `tcp://127.0.0.1:${port}`,
      );
      const { chunks, error } = await drain(await e.saveImage('sifkit-bench/one:1g'));
      expect(error).toBeUndefined();
      expect(Buffer.concat(chunks).equals(image)).toBe(true);
      expect(s.requests[0].split('\r\n').slice(0, 2)).toEqual([
        'GET /v1.41/images/sifkit-bench/one%3A1g/get HTTP/1.0',
        `Host: 127.0.0.1:${port}`,
      ]);
    } finally {
      await s.close();
    }
  });
});
