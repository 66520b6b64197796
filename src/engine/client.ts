import Docker from 'dockerode';
import { InputError, OperationError } from '../errors';

/** Where dockerode will look: DOCKER_HOST as it reads it, else the local socket. */
export function engineAddress(env = process.env): string {
  return env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** A dockerode client for DOCKER_HOST (tcp, ssh, unix) or the local socket. */
export function engineClient(): Docker {
  // docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH itself.
  return new Docker();
}

/**
 * A client for one engine address, as DOCKER_HOST spells them:
 * unix:///path.sock, tcp://host:port, ssh://user@host.
 */
export function engineClientFor(address: string): Docker {
  const u = new URL(address);
  if (u.protocol === 'unix:') return new Docker({ socketPath: u.pathname });
  if (u.protocol === 'tcp:' || u.protocol === 'http:') return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
  if (u.protocol === 'https:') return new Docker({ host: u.hostname, port: Number(u.port || 2376), protocol: 'https' });
  if (u.protocol === 'ssh:') return new Docker({ host: u.hostname, port: Number(u.port || 22), protocol: 'ssh', username: u.username || undefined } as Docker.DockerOptions);
  throw new InputError('bad-engine', `engine address ${address} is not unix://, tcp://, https:// or ssh://`);
}

/** Pings the engine; a clear error naming where it looked when none answers. */
export async function connectEngine(signal?: AbortSignal, address?: string): Promise<Docker> {
  const docker = address ? engineClientFor(address) : engineClient();
  try {
    await docker.ping({ abortSignal: signal } as never);
  } catch (e) {
    throw new OperationError('no-engine', `no Docker engine answers at ${address ?? engineAddress()} (${(e as Error).message.split('\n')[0]})`, {
      hint: 'start one (e.g. `dockerd --iptables=false --bridge=none &`, or scripts/services.sh), or set DOCKER_HOST',
      cause: e,
    });
  }
  return docker;
}

/** The HTTP status of a dockerode error, for mapping errors by status, not text. */
export function httpStatus(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
}
