/**
 * The image engine as sifkit uses it: the few calls build, convert, the
 * local runner and the pipeline make, in sifkit's own types. One real
 * implementation speaks the Docker Engine API (`engine/docker.ts`); tests
 * of pure orchestration use an in-memory one (test/support/fake-engine.ts).
 * Nothing here imports dockerode, so the library's declarations do not
 * name its types.
 */
import type { Readable } from 'node:stream';
import type { OciConfig } from '../validate/schemas/docker';

/** An image as a listing shows it. */
export interface ImageSummary {
  /** `sha256:<64 hex>`. */
  id: string;
  repoTags: string[];
  /** Seconds since the epoch. */
  created: number;
  size: number;
  labels: Record<string, string>;
}

/** An image as inspect shows it: what build, convert and the tests read. */
export interface ImageDetails {
  id: string;
  repoTags: string[];
  size: number;
  architecture: string;
  /** ISO 8601. */
  created: string;
  /** The image config (Env, Cmd, Entrypoint, Labels, WorkingDir, User...), checked by its schema. */
  config: OciConfig;
  labels: Record<string, string>;
  /** The version of the engine that built it, when the engine recorded one (`DockerVersion`; empty under BuildKit). */
  builtWith?: string;
}

/** The engine's own version, as it answers `GET /version`. */
export interface EngineVersion {
  version: string;
  apiVersion: string;
}

export interface BuildRequest {
  /** The build context: a tar stream with the Dockerfile at its root. */
  context: Readable;
  buildargs: Record<string, string>;
  labels?: Record<string, string>;
  /** 'host' when the build fetches from the file server on the host's loopback. */
  networkMode: 'host' | 'none' | 'default';
  noCache: boolean;
  /** Images (loaded from another engine) the build may take steps from, besides this engine's own cache. */
  cacheFrom?: string[];
  signal: AbortSignal;
}

export interface ContainerSpec {
  image: string;
  cmd?: string[];
  entrypoint?: string[];
  labels?: Record<string, string>;
  /**
   * Checks and exports never need a network: 'none' leaves only loopback;
   * 'disabled' is for a container that is never started (an export).
   */
  network: 'none' | 'disabled';
  shmSizeBytes?: number;
}

/** A created container. Never started by convert (it only exports it). */
export interface ContainerHandle {
  id: string;
  /** Its stdout and stderr as one stream, in the order the engine sends them; attach before start. */
  attach(): Promise<Readable>;
  start(): Promise<void>;
  /** Waits for it to exit; its exit status. */
  wait(): Promise<number>;
  kill(): Promise<void>;
  /** Removes it, running or not. */
  remove(): Promise<void>;
  /** Its file system as a tar stream (`docker export`). */
  export(): Promise<Readable>;
}

export interface ImageEngine {
  /** Where it answers (for messages): unix:///var/run/docker.sock, tcp://host:port... */
  readonly address: string;
  ping(signal?: AbortSignal): Promise<void>;
  /** Its version (what provenance records). */
  version(signal?: AbortSignal): Promise<EngineVersion>;
  /** Starts a build; the engine's progress, one JSON object per line (`stream`, `aux`, `error`, `errorDetail`). */
  build(req: BuildRequest): Promise<Readable>;
  /** Images carrying the label `key=value`. */
  listImages(label: string): Promise<ImageSummary[]>;
  /** The image, or an error whose `statusCode` is 404 when there is none. */
  inspectImage(ref: string): Promise<ImageDetails>;
  /** `docker save` of one image, as a stream (the caller's pipeline carries the abort signal). */
  saveImage(ref: string): Promise<Readable>;
  /** `docker load` of a `docker save` stream; settles when the engine has loaded it (or said why not). */
  loadImage(archive: Readable, signal?: AbortSignal): Promise<void>;
  tagImage(ref: string, repo: string, tag: string): Promise<void>;
  removeImage(ref: string): Promise<void>;
  createContainer(spec: ContainerSpec): Promise<ContainerHandle>;
  /** Containers (running or not) carrying the label key. */
  listContainers(labelKey: string): Promise<Array<{ id: string; labels: Record<string, string> }>>;
  removeContainer(id: string): Promise<void>;
}
