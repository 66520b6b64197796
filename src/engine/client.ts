import type Docker from 'dockerode';
import { InputError, OperationError, errnoCode, throwIfAborted, type SifkitError } from '../errors';
import { dockerEngine } from './docker';
import type { ImageDetails, ImageEngine } from './engine';

/** Where dockerode will look: DOCKER_HOST as it reads it, else the local socket. */
export function engineAddress(env = process.env): string {
  return env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** dockerode (with ssh2 and grpc) takes a fifth of a second to load: only a command that talks to an engine loads it. */
function dockerode(): typeof Docker {
  return require('dockerode') as typeof Docker;
}

/** A dockerode client for DOCKER_HOST (tcp, ssh, unix) or the local socket. */
function engineClient(): Docker {
  // docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH itself.
  const Dockerode = dockerode();
  return new Dockerode();
}

/**
 * A client for one engine address, as DOCKER_HOST spells them:
 * unix:///path.sock, tcp://host:port, ssh://user@host.
 */
function engineClientFor(address: string): Docker {
  const u = new URL(address);
  const Dockerode = dockerode();
  if (u.protocol === 'unix:') return new Dockerode({ socketPath: u.pathname });
  if (u.protocol === 'tcp:' || u.protocol === 'http:')
    return new Dockerode({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
  if (u.protocol === 'https:')
    return new Dockerode({ host: u.hostname, port: Number(u.port || 2376), protocol: 'https' });
  if (u.protocol === 'ssh:')
    return new Dockerode({
      host: u.hostname,
      port: Number(u.port || 22),
      protocol: 'ssh',
      username: u.username || undefined,
    } as Docker.DockerOptions);
  throw new InputError('bad-engine', `engine address ${address} is not unix://, tcp://, https:// or ssh://`);
}

/** How long a ping may take before the engine counts as not answering. */
const PING_TIMEOUT_MS = 10_000;

/** Pings the engine; a clear error naming where it looked when none answers. */
export async function connectEngine(signal?: AbortSignal, address?: string): Promise<ImageEngine> {
  const where = address ?? engineAddress();
  const engine = dockerEngine(address ? engineClientFor(address) : engineClient(), where);
  const limit = AbortSignal.timeout(PING_TIMEOUT_MS);
  try {
    await engine.ping(signal ? AbortSignal.any([signal, limit]) : limit);
  } catch (e) {
    throwIfAborted(signal);
    throw (
      engineFailure(e) ??
      noEngine(limit.aborted ? Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }) : e, where)
    );
  }
  return engine;
}

/** The HTTP status of a dockerode error, for mapping errors by status, not text. */
export function httpStatus(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The engine's image `ref`; an image the engine does not have is bad input, in one line (exit 2). */
export async function inspectImageRef(engine: ImageEngine, ref: string): Promise<ImageDetails> {
  try {
    return await engine.inspectImage(ref);
  } catch (e) {
    if (httpStatus(e) === 404) throw new InputError('no-image', `the engine has no image ${ref}`);
    throw e;
  }
}

/** The daemon's own words from a dockerode error (its JSON `message`), on one line. */
export function daemonMessage(e: unknown): string {
  const err = e as { json?: { message?: unknown } | null; reason?: unknown; message?: unknown };
  const said =
    typeof err?.json?.message === 'string'
      ? err.json.message
      : typeof err?.message === 'string'
        ? err.message
        : String(e);
  return said.split('\n')[0].trim();
}

const START_HINT =
  'start one (e.g. `dockerd --iptables=false --bridge=none &`, or scripts/services.sh), or set DOCKER_HOST';
const DAEMON_LOG_HINT = "that is the daemon's own error; its log says more (journalctl -u docker, or dockerd's output)";

/** Why a connection to the engine failed, by errno. */
const CONNECT_FAILURE: Record<string, { why: string; hint: string }> = {
  ENOENT: { why: 'no socket there', hint: START_HINT },
  ECONNREFUSED: { why: 'connection refused', hint: START_HINT },
  EACCES: {
    why: 'permission denied on the socket',
    hint: 'add your user to the docker group (then log in again), or point DOCKER_HOST at an engine you may use',
  },
  EPERM: {
    why: 'permission denied on the socket',
    hint: 'add your user to the docker group (then log in again), or point DOCKER_HOST at an engine you may use',
  },
  ETIMEDOUT: {
    why: `no answer within ${PING_TIMEOUT_MS / 1000} s`,
    hint: 'the engine is hung or the address is wrong; check DOCKER_HOST',
  },
  ENOTFOUND: { why: 'the host name does not resolve', hint: 'check the host in DOCKER_HOST' },
  EAI_AGAIN: {
    why: 'the host name does not resolve (DNS did not answer)',
    hint: 'check the host in DOCKER_HOST and DNS',
  },
  EHOSTUNREACH: { why: 'the host is unreachable', hint: 'check the host in DOCKER_HOST' },
  ENETUNREACH: { why: 'the network is unreachable', hint: 'check the host in DOCKER_HOST' },
  ECONNRESET: { why: 'the connection was reset', hint: 'the engine stopped or restarted; check it is running' },
  EPIPE: { why: 'the connection was closed', hint: 'the engine stopped or restarted; check it is running' },
};

/**
 * A Docker engine's error answer as one line with the daemon's own text
 * and a hint, mapped by HTTP status (dockerode errors carry statusCode);
 * undefined for errors that are not an engine's answer.
 */
export function engineFailure(e: unknown): SifkitError | undefined {
  const status = httpStatus(e);
  if (status === undefined) return undefined;
  const said = daemonMessage(e);
  if (status === 400)
    return new InputError('engine-bad-request', `the Docker engine refused the request (HTTP 400): ${said}`, {
      cause: e,
    });
  if (status === 404)
    return new InputError('engine-not-found', `the Docker engine has no such object (HTTP 404): ${said}`, { cause: e });
  if (status === 409)
    return new OperationError('engine-conflict', `the Docker engine refused: conflict (HTTP 409): ${said}`, {
      hint: 'a container or image of that name is in the way, or still in use',
      cause: e,
    });
  if (status === 401 || status === 403)
    return new OperationError('engine-forbidden', `the Docker engine forbids this (HTTP ${status}): ${said}`, {
      hint: 'an authorization plugin or policy of the engine denies it',
      cause: e,
    });
  return new OperationError('engine-error', `the Docker engine failed (HTTP ${status}): ${said}`, {
    hint: DAEMON_LOG_HINT,
    cause: e,
  });
}

/** No engine answered at `address`: why, by errno, with what to do. */
export function noEngine(e: unknown, address: string): OperationError {
  const code = errnoCode(e);
  const known = code ? CONNECT_FAILURE[code] : undefined;
  const why = known ? `${known.why} (${code})` : daemonMessage(e);
  return new OperationError('no-engine', `no Docker engine answers at ${address}: ${why}`, {
    hint: known?.hint ?? START_HINT,
    cause: e,
  });
}
