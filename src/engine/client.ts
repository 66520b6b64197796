import Docker from 'dockerode';
import { OperationError } from '../errors';

/** Where dockerode will look: DOCKER_HOST as it reads it, else the local socket. */
export function engineAddress(env = process.env): string {
  return env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** A dockerode client for DOCKER_HOST (tcp, ssh, unix) or the local socket. */
export function engineClient(): Docker {
  // docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH itself.
  return new Docker();
}

/** Pings the engine; a clear error naming where it looked when none answers. */
export async function connectEngine(signal?: AbortSignal): Promise<Docker> {
  const docker = engineClient();
  try {
    await docker.ping({ abortSignal: signal } as never);
  } catch (e) {
    throw new OperationError('no-engine', `no Docker engine answers at ${engineAddress()} (${(e as Error).message.split('\n')[0]})`, {
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
