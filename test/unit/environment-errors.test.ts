/** The pure mappings from what the environment said to one line a person can act on. */
import fc from 'fast-check';
import { ExitCode, InputError, OperationError, RefusedError } from '../../src/errors';
import { engineFailure, noEngine } from '../../src/engine/client';
import { apiBase, failureOf, GitHubNetworkError, networkKind } from '../../src/github/octokit';
import { explain } from '../../src/github/pull-request';
import { childFailure, lastLine } from '../../src/util/process';

/** What docker-modem rejects with: the daemon's JSON message, the HTTP status. */
function modemError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message} `), {
    statusCode,
    reason: 'unexpected',
    json: { message },
  });
}

describe('Docker engine errors, by HTTP status', () => {
  it.each([
    [
      400,
      InputError,
      'engine-bad-request',
      'the Docker engine refused the request (HTTP 400): invalid reference format',
    ],
    [404, InputError, 'engine-not-found', 'the Docker engine has no such object (HTTP 404): invalid reference format'],
    [
      409,
      OperationError,
      'engine-conflict',
      'the Docker engine refused: conflict (HTTP 409): invalid reference format',
    ],
    [403, OperationError, 'engine-forbidden', 'the Docker engine forbids this (HTTP 403): invalid reference format'],
    [500, OperationError, 'engine-error', 'the Docker engine failed (HTTP 500): invalid reference format'],
    [503, OperationError, 'engine-error', 'the Docker engine failed (HTTP 503): invalid reference format'],
  ])('%i', (status, cls, code, message) => {
    const e = engineFailure(modemError(status, 'invalid reference format'));
    expect(e).toBeInstanceOf(cls);
    expect(e).toMatchObject({ code, message });
  });
  it("a 500 keeps the daemon's own words, first line only, and points at its log", () => {
    const e = engineFailure(modemError(500, 'failed to create shim task: OCI runtime create failed\nmore detail'));
    expect(e?.message).toBe(
      'the Docker engine failed (HTTP 500): failed to create shim task: OCI runtime create failed',
    );
    expect(e?.hint).toMatch(/daemon's own error/);
    expect(e?.exitCode).toBe(ExitCode.failed);
  });
  it('is not fooled by message text: no statusCode, no engine error', () => {
    expect(engineFailure(new Error('(HTTP code 500) server error'))).toBeUndefined();
    expect(engineFailure(Object.assign(new Error('x'), { code: 'ENOENT', syscall: 'open' }))).toBeUndefined();
  });
  it('no engine: the reason by errno, the address, a hint that fits', () => {
    const eacces = noEngine(
      Object.assign(new Error('connect EACCES /var/run/docker.sock'), { code: 'EACCES' }),
      'unix:///var/run/docker.sock',
    );
    expect(eacces).toMatchObject({
      code: 'no-engine',
      exitCode: 1,
      message: 'no Docker engine answers at unix:///var/run/docker.sock: permission denied on the socket (EACCES)',
    });
    expect(eacces.hint).toMatch(/docker group/);
    expect(noEngine(new Error('socket hang up'), 'tcp://h:2375').message).toBe(
      'no Docker engine answers at tcp://h:2375: socket hang up',
    );
  });
  it('any status and message give one line with the right exit code (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.string(), (status, text) => {
        const e = engineFailure(modemError(status, text))!;
        expect(e.message.split('\n')).toHaveLength(1);
        expect([ExitCode.failed, ExitCode.usage]).toContain(e.exitCode);
      }),
      { seed: 1601, verbose: true },
    );
  });
});

describe('child process failures', () => {
  it('quote the last non-empty stderr line', () => {
    expect(lastLine('Parallel mksquashfs: Using 2 processors\nFATAL ERROR: Requested memory size too large\n\n')).toBe(
      'FATAL ERROR: Requested memory size too large',
    );
    expect(childFailure('mksquashfs', { code: 1, signal: null }, 'a\nFATAL ERROR: x\n')).toBe(
      'mksquashfs failed (exit 1): FATAL ERROR: x',
    );
    expect(childFailure('sbatch', { code: null, signal: 'SIGKILL' }, '')).toBe(
      'sbatch was killed by SIGKILL: nothing on stderr',
    );
    expect(childFailure('scontrol', { code: null, signal: 'SIGKILL', timedOutMs: 60_000 }, 'slow')).toBe(
      'scontrol timed out after 60 s: slow',
    );
  });
});

describe('GitHub', () => {
  it.each([
    ['https://api.github.com', 'https://api.github.com'],
    ['https://ghe.example.org/api/v3/', 'https://ghe.example.org/api/v3'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http://localhost:1234/', 'http://localhost:1234'],
  ])('accepts %s', (url, base) => {
    expect(apiBase(url)).toBe(base);
  });
  it.each([
    ['not a url', InputError, /is not a URL/],
    ['', InputError, /is not a URL/],
    ['file:///etc/passwd', InputError, /is not http\(s\)/],
    ['https://u:p@api.github.com', InputError, /must not carry a user or password/],
    ['https://api.github.com/?x=1', InputError, /query or fragment/],
    ['http://api.github.com', RefusedError, /plain http to another host/],
  ])('refuses %j before any request', (url, cls, message) => {
    expect(() => apiBase(url)).toThrow(cls);
    expect(() => apiBase(url)).toThrow(message);
  });
  it('names network failures by the cause fetch gives', () => {
    const fetchFailed = (code: string) =>
      Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(code), { code }) });
    expect(networkKind(fetchFailed('ECONNREFUSED')).kind).toBe('refused');
    expect(networkKind(fetchFailed('ENOTFOUND')).kind).toBe('dns');
    expect(networkKind(fetchFailed('EAI_AGAIN')).kind).toBe('dns');
    expect(networkKind(fetchFailed('ERR_SSL_WRONG_VERSION_NUMBER')).kind).toBe('tls');
    expect(networkKind(fetchFailed('DEPTH_ZERO_SELF_SIGNED_CERT')).kind).toBe('tls');
    expect(networkKind(fetchFailed('UND_ERR_SOCKET')).kind).toBe('reset');
    expect(networkKind(fetchFailed('UND_ERR_CONNECT_TIMEOUT')).kind).toBe('timeout');
    expect(networkKind(Object.assign(new Error('t'), { name: 'TimeoutError' })).kind).toBe('timeout');
  });
  it('a network failure is an environment failure, exit 1, with the host; never a made-up 500', () => {
    const e = explain(
      failureOf(
        new GitHubNetworkError('refused', 'api.github.com', 'ECONNREFUSED', 'GET', 'https://api.github.com/repos/a/b'),
      ),
      'a',
      'b',
    );
    expect(e).toBeInstanceOf(OperationError);
    expect(e.message).toBe('GitHub cannot be reached: connection refused: api.github.com (ECONNREFUSED)');
    expect(e.message).not.toMatch(/500/);
  });
  it('only a timeout or a dropped connection is marked for the retry plugin', () => {
    const st = (k: 'refused' | 'dns' | 'tls' | 'timeout' | 'reset') =>
      new GitHubNetworkError(k, 'h', '', 'GET', 'https://h/x').status;
    expect([st('refused'), st('dns'), st('tls')]).toEqual([0, 0, 0]);
    expect([st('timeout'), st('reset')]).toEqual([500, 500]);
  });
});
