/**
 * The image engine over the Docker Engine API (dockerode): the one real
 * `ImageEngine`. Every option that matters is spelled out here rather than
 * left to the engine's or dockerode's defaults. dockerode's errors pass
 * through unchanged: they carry `statusCode`, which engine/client.ts maps.
 * Every answer read goes through its schema (validate/schemas/engine.ts).
 */
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { z } from 'zod';
import { InterruptedError, OperationError } from '../errors';
import { BuildStreamParser } from './progress';
import { getTar, type PlainEndpoint } from './socket-tar';
import { checkName } from '../validate/names';
import { formatIssue } from '../validate/schema';
import {
  containerCreateAnswer,
  containerListAnswer,
  containerWaitAnswer,
  imageInspectAnswer,
  versionAnswer,
  imageListAnswer,
} from '../validate/schemas/engine';
import type { BuildRequest, ContainerHandle, ContainerSpec, ImageDetails, ImageEngine, ImageSummary } from './engine';

/** What of docker-modem's settings says where and how it connects. */
interface ModemSettings {
  socketPath?: string | (() => string | Promise<string>);
  host?: string;
  port?: string | number;
  protocol?: string;
  pathPrefix?: string;
  version?: string;
  headers?: Record<string, string>;
  agent?: unknown;
}

/**
 * Where the engine answers plain HTTP (a unix socket; tcp without TLS),
 * for a tar answer read off the socket (socket-tar.ts); undefined for
 * TLS, ssh, a path prefix or an agent, which dockerode's client keeps.
 */
export async function plainEndpoint(modem: ModemSettings): Promise<PlainEndpoint | undefined> {
  if (modem.protocol !== 'http' || modem.pathPrefix || modem.agent) return undefined;
  if (modem.socketPath) {
    const p = typeof modem.socketPath === 'function' ? await modem.socketPath() : modem.socketPath;
    return typeof p === 'string' && p ? { socketPath: p } : undefined;
  }
  const port = Number(modem.port);
  // A host dockerode would parse as a URL (http://…) stays dockerode's.
  if (!modem.host || /[/@]/.test(modem.host) || !Number.isInteger(port) || port <= 0) return undefined;
  return { host: modem.host, port };
}

/**
 * A tar answer (an image's save, a container's export) read off the
 * socket (socket-tar.ts) where the connection is plain; undefined where
 * dockerode's client reads it.
 */
async function tarOffSocket(docker: Docker, path: string, what: string): Promise<Readable | undefined> {
  const modem = docker.modem as ModemSettings;
  const plain = await plainEndpoint(modem);
  if (!plain) return undefined;
  const version = modem.version ? `/${encodeURIComponent(modem.version)}` : '';
  return getTar(plain, `${version}${path}`, what, modem.headers);
}

/** An image reference checked before it becomes part of an Engine API path (validate/names.ts). */
function imageRef(ref: string): string {
  return checkName('image reference', ref, 'the image engine');
}

function labelsOf(l: Record<string, string> | null | undefined): Record<string, string> {
  return { ...(l ?? {}) };
}

/** An engine answer checked against its schema: one that does not fit is a failure in one line, not data. */
export function engineAnswer<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new OperationError(
    'bad-engine-answer',
    formatIssue(r.error.issues[0], value, `the Docker engine's answer to ${what}`),
    { hint: 'the engine (or a proxy in front of it) sent something the Docker Engine API does not; check DOCKER_HOST' },
  );
}

function handle(docker: Docker, container: Docker.Container): ContainerHandle {
  const id = engineAnswer(containerCreateAnswer, container, 'create container').id;
  return {
    id,
    async attach() {
      const raw = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
      // Without a terminal the engine frames stdout and stderr; one stream
      // in the engine's order is what the runner judges.
      const out = new PassThrough();
      docker.modem.demuxStream(raw, out, out);
      const finish = () => out.end();
      raw.on('end', finish);
      raw.on('close', finish);
      raw.on('error', (e: Error) => out.destroy(e));
      return out;
    },
    async start() {
      await container.start();
    },
    async wait() {
      return engineAnswer(containerWaitAnswer, await container.wait(), `wait for container ${id.slice(0, 12)}`)
        .StatusCode;
    },
    async kill() {
      await container.kill();
    },
    async remove() {
      await container.remove({ force: true });
    },
    async export() {
      return (
        (await tarOffSocket(
          docker,
          `/containers/${encodeURIComponent(id)}/export`,
          `container ${id.slice(0, 12)}'s export`,
        )) ?? ((await container.export()) as unknown as Readable)
      );
    },
  };
}

/** The create request for a spec: every setting that matters spelled out. */
export function createOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  return {
    Image: spec.image,
    ...(spec.entrypoint && { Entrypoint: spec.entrypoint }),
    ...(spec.cmd && { Cmd: spec.cmd }),
    // No terminal: with one, the engine can end the attach stream before it
    // has copied the last bytes of a process that exits at once (a lost
    // final line was seen under load).
    Tty: false,
    Labels: spec.labels,
    // A container that is never started (an export) needs no network stack at all.
    ...(spec.network === 'disabled' && { NetworkDisabled: true }),
    HostConfig: { NetworkMode: 'none', ...(spec.shmSizeBytes !== undefined && { ShmSize: spec.shmSizeBytes }) },
  };
}

/** The build request's options (the context goes as the body). */
export function buildOptions(req: BuildRequest): Docker.ImageBuildOptions {
  return {
    buildargs: req.buildargs,
    labels: req.labels,
    networkmode: req.networkMode,
    // Intermediate containers go, also after a failed step.
    rm: true,
    forcerm: true,
    nocache: req.noCache,
    // dockerode sends a list as the JSON the API takes (its typings say string).
    ...(req.cacheFrom?.length && { cachefrom: req.cacheFrom as unknown as string }),
    abortSignal: req.signal,
  };
}

/** An `ImageEngine` over a dockerode client that answers at `address`. */
export function dockerEngine(docker: Docker, address: string): ImageEngine {
  return {
    address,
    async ping(signal) {
      // The typings lack ping's options; dockerode passes abortSignal on.
      await (docker.ping as (o: { abortSignal?: AbortSignal }) => Promise<unknown>)({ abortSignal: signal });
    },
    async version(signal) {
      const answer = await (docker.version as (o: { abortSignal?: AbortSignal }) => Promise<unknown>)({
        abortSignal: signal,
      });
      const v = engineAnswer(versionAnswer, answer, 'version');
      return { version: v.Version, apiVersion: v.ApiVersion };
    },
    async build(req: BuildRequest) {
      return (await docker.buildImage(
        req.context as unknown as NodeJS.ReadableStream,
        buildOptions(req),
      )) as unknown as Readable;
    },
    async listImages(label: string): Promise<ImageSummary[]> {
      const list = engineAnswer(
        imageListAnswer,
        await docker.listImages({ filters: JSON.stringify({ label: [label] }) }),
        `list images labelled ${label}`,
      );
      return list.map((i) => ({
        id: i.Id,
        repoTags: i.RepoTags ?? [],
        created: i.Created,
        size: i.Size,
        labels: labelsOf(i.Labels),
      }));
    },
    async inspectImage(ref: string): Promise<ImageDetails> {
      const i = engineAnswer(
        imageInspectAnswer,
        await docker.getImage(imageRef(ref)).inspect(),
        `inspect image ${ref}`,
      );
      const config = i.Config ?? {};
      return {
        id: i.Id,
        repoTags: i.RepoTags ?? [],
        size: i.Size,
        architecture: i.Architecture,
        created: i.Created,
        config,
        labels: labelsOf(i.Config?.Labels),
        builtWith: i.DockerVersion || undefined,
      };
    },
    async saveImage(ref: string) {
      const checked = imageRef(ref);
      const path = `/images/${checked.split('/').map(encodeURIComponent).join('/')}/get`;
      return (
        (await tarOffSocket(docker, path, `image ${checked}`)) ??
        ((await docker.getImage(checked).get()) as unknown as Readable)
      );
    },
    async loadImage(archive: Readable, signal?: AbortSignal) {
      // The upload ends on Ctrl-C, and when the saved stream fails (the other engine went away):
      // the engine drops a load it did not finish, and the request does not wait for a body that stopped.
      const stop = new AbortController();
      let sourceError: Error | undefined;
      const onAbort = () => stop.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      archive.on('error', (e: Error) => {
        sourceError ??= e;
        stop.abort();
      });
      try {
        if (signal?.aborted) onAbort();
        const answer = (await docker.loadImage(archive as unknown as NodeJS.ReadableStream, {
          quiet: true,
          abortSignal: stop.signal,
        })) as unknown as Readable;
        // Like a build, a load reports failure inside a 200 answer's JSON lines.
        const parser = new BuildStreamParser();
        for await (const chunk of answer) parser.feed(chunk as Buffer);
        if (parser.error)
          throw new OperationError('load-failed', `the engine at ${address} did not load the image: ${parser.error}`);
      } catch (e) {
        if (signal?.aborted) throw new InterruptedError();
        if (sourceError)
          throw new OperationError('load-failed', `the image stream to ${address} failed: ${sourceError.message}`);
        throw e;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        archive.destroy();
      }
      if (sourceError)
        throw new OperationError('load-failed', `the image stream to ${address} failed: ${sourceError.message}`);
    },
    async tagImage(ref: string, repo: string, tag: string) {
      await docker.getImage(imageRef(ref)).tag({ repo, tag });
    },
    async removeImage(ref: string) {
      await docker.getImage(imageRef(ref)).remove({ force: true });
    },
    async createContainer(spec: ContainerSpec) {
      return handle(docker, await docker.createContainer(createOptions(spec)));
    },
    async listContainers(labelKey: string) {
      const list = engineAnswer(
        containerListAnswer,
        await docker.listContainers({ all: true, filters: { label: [labelKey] } }),
        `list containers labelled ${labelKey}`,
      );
      return list.map((c) => ({ id: c.Id, labels: labelsOf(c.Labels) }));
    },
    async removeContainer(id: string) {
      await docker.getContainer(id).remove({ force: true });
    },
  };
}
