/**
 * An in-memory ImageEngine for unit tests. It holds images and containers
 * as plain data and records every call, so a test can assert what build,
 * convert and the local runner asked of the engine. It runs nothing: a
 * build replays the JSON lines a test scripted, and a started container
 * plays the output and exit status a test gave it.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import * as tar from 'tar-stream';
import type {
  BuildRequest,
  ContainerHandle,
  ContainerSpec,
  ImageDetails,
  EngineVersion,
  ImageEngine,
  ImageSummary,
} from '../../src/engine/engine';
import { layerTar, tarBuffer, type LayerEntry } from './archives';

export interface FakeImage {
  /** `sha256:<64 hex>`. */
  id: string;
  tags: string[];
  labels: Record<string, string>;
  /** The image config as inspect shows it (Env, Cmd, Labels...). */
  config: Record<string, unknown>;
  architecture: string;
  /** ISO 8601. */
  created: string;
  size: number;
  /** What `docker save` gives: a docker archive. */
  archive: Buffer;
  /** What `docker export` of a container of it gives: a tar of its file system. */
  rootfs: Buffer;
}

/** What a build replays. */
export interface ScriptedBuild {
  /** The engine's JSON lines (objects are serialised, strings sent as they are). */
  lines: Array<object | string>;
  /** Stored when the stream ends, as the engine commits the last step. */
  image?: FakeImage;
  /** Stays open after the lines until the build's signal aborts it. */
  hang?: boolean;
}

/** What a started container does. */
export interface ScriptedProcess {
  /** Written to the attached stream in these chunks. */
  output: string[];
  exitCode: number;
  /** Written after wait() has answered, as output still in flight when the process exited. */
  afterExit?: string[];
  /** Runs until killed (exit status 137). */
  hang?: boolean;
}

export interface FakeContainer {
  id: string;
  spec: ContainerSpec;
  labels: Record<string, string>;
  state: 'created' | 'running' | 'exited';
  exitCode?: number;
}

export interface Call {
  op: string;
  args: unknown[];
}

/** The error the real engine's client gives: a status code and the daemon's JSON message. */
export function engineError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), { statusCode, json: { message } });
}

export class FakeEngine implements ImageEngine {
  readonly address = 'fake://engine';
  readonly images = new Map<string, FakeImage>();
  readonly containers = new Map<string, FakeContainer>();
  readonly calls: Call[] = [];
  /** The next builds, in order. */
  readonly builds: ScriptedBuild[] = [];
  /**
   * When set, what a build does is chosen from the Dockerfile it was sent
   * (as the engine builds what the context says), not taken from `builds`:
   * for runs where variants reach the engine in no fixed order.
   */
  buildFor?: (dockerfile: string) => ScriptedBuild | Promise<ScriptedBuild>;
  /** What each started container does (default: no output, exit 0). */
  process: (spec: ContainerSpec) => ScriptedProcess = () => ({ output: [], exitCode: 0 });
  private made = 0;
  /** How to end each container that has a process: removing it ends it too. */
  private readonly stops = new Map<string, (code: number) => void>();

  addImage(img: FakeImage): void {
    this.images.set(img.id, img);
  }

  /** The ops called, in order (`tagImage`, `removeContainer`...). */
  ops(): string[] {
    return this.calls.map((c) => c.op);
  }

  private record(op: string, ...args: unknown[]): void {
    this.calls.push({ op, args });
  }

  private find(ref: string): FakeImage {
    const bare = ref.replace(/^sha256:/, '');
    for (const img of this.images.values()) {
      if (
        img.id === ref ||
        (bare.length >= 12 && img.id.slice(7).startsWith(bare)) ||
        img.tags.includes(ref) ||
        img.tags.includes(`${ref}:latest`)
      )
        return img;
    }
    throw engineError(404, `No such image: ${ref}`);
  }

  /** A new container ID, counted rather than drawn so runs are the same. */
  nextId(): string {
    return createHash('sha256').update(`fake container ${++this.made}`).digest('hex');
  }

  async ping(): Promise<void> {
    this.record('ping');
  }

  /** Not recorded: the build asks it for provenance, and no test's expected call list is about the version. */
  async version(): Promise<EngineVersion> {
    return { version: '0.0.0-fake', apiVersion: '1.41' };
  }

  async build(req: BuildRequest): Promise<Readable> {
    this.record('build', {
      buildargs: req.buildargs,
      labels: req.labels,
      networkMode: req.networkMode,
      noCache: req.noCache,
    });
    const script = this.buildFor ? await this.buildFor(await dockerfileOf(req.context)) : this.builds.shift();
    if (!script) throw new Error('FakeEngine: no build scripted');
    req.context.resume();
    const out = new PassThrough();
    const intermediates: string[] = [];
    const send = async () => {
      for (const l of script.lines) {
        if (req.signal.aborted) return;
        const text = typeof l === 'string' ? l : JSON.stringify(l);
        // The engine starts a container for each RUN step.
        for (const m of text.matchAll(/---> Running in ([0-9a-f]{12,64})/g)) {
          this.containers.set(m[1], {
            id: m[1],
            spec: { image: 'build-step', network: 'none' },
            labels: {},
            state: 'running',
          });
          intermediates.push(m[1]);
        }
        out.write(text + '\n');
        await new Promise((r) => setImmediate(r));
      }
      if (script.hang) return;
      // rm/forcerm: the engine removes its step containers when the build ends, failed or not.
      for (const id of intermediates) this.containers.delete(id);
      if (script.image) this.images.set(script.image.id, script.image);
      out.end();
    };
    const abort = () => out.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    if (req.signal.aborted) abort();
    else req.signal.addEventListener('abort', abort, { once: true });
    void send();
    return out;
  }

  async listImages(label: string): Promise<ImageSummary[]> {
    this.record('listImages', label);
    const [k, v] = label.split(/=(.*)/s);
    return [...this.images.values()]
      .filter((i) => k in i.labels && (v === undefined || i.labels[k] === v))
      .map((i) => ({
        id: i.id,
        repoTags: [...i.tags],
        created: Math.floor(Date.parse(i.created) / 1000),
        size: i.size,
        labels: { ...i.labels },
      }));
  }

  async inspectImage(ref: string): Promise<ImageDetails> {
    this.record('inspectImage', ref);
    const i = this.find(ref);
    return {
      id: i.id,
      repoTags: [...i.tags],
      size: i.size,
      architecture: i.architecture,
      created: i.created,
      config: { ...i.config, Labels: { ...i.labels } },
      labels: { ...i.labels },
    };
  }

  async saveImage(ref: string): Promise<Readable> {
    this.record('saveImage', ref);
    return Readable.from([this.find(ref).archive]);
  }

  /** Takes the stream whole; what it held is not read back (no test of pure logic needs it). */
  async loadImage(archive: Readable): Promise<void> {
    this.record('loadImage');
    for await (const chunk of archive) void chunk;
  }

  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    this.record('tagImage', ref, `${repo}:${tag}`);
    const img = this.find(ref);
    const name = `${repo}:${tag}`;
    for (const other of this.images.values()) other.tags = other.tags.filter((t) => t !== name);
    img.tags.push(name);
  }

  async removeImage(ref: string): Promise<void> {
    this.record('removeImage', ref);
    this.images.delete(this.find(ref).id);
  }

  async createContainer(spec: ContainerSpec): Promise<ContainerHandle> {
    this.record('createContainer', spec);
    const img = this.find(spec.image);
    const c: FakeContainer = { id: this.nextId(), spec, labels: { ...(spec.labels ?? {}) }, state: 'created' };
    this.containers.set(c.id, c);
    return this.handle(c, img);
  }

  private handle(c: FakeContainer, img: FakeImage): ContainerHandle {
    const stdout = new PassThrough();
    let exited: (code: number) => void = () => undefined;
    const exit = new Promise<number>((resolve) => (exited = resolve));
    const finish = (code: number, late: string[] = []) => {
      if (c.state === 'exited') return;
      c.state = 'exited';
      c.exitCode = code;
      exited(code);
      void (async () => {
        for (const chunk of late) {
          await new Promise((r) => setImmediate(r));
          stdout.write(chunk);
        }
        stdout.end();
      })();
    };
    this.stops.set(c.id, finish);
    const gone = () => {
      if (!this.containers.has(c.id)) throw engineError(404, `No such container: ${c.id}`);
    };
    return {
      id: c.id,
      attach: async () => {
        this.record('attach', c.id);
        gone();
        return stdout;
      },
      start: async () => {
        this.record('start', c.id);
        gone();
        c.state = 'running';
        const p = this.process(c.spec);
        void (async () => {
          for (const chunk of p.output) {
            await new Promise((r) => setImmediate(r));
            if (c.state !== 'running') return;
            stdout.write(chunk);
          }
          if (!p.hang) finish(p.exitCode, p.afterExit);
        })();
      },
      wait: async () => {
        this.record('wait', c.id);
        gone();
        return exit;
      },
      kill: async () => {
        this.record('kill', c.id);
        gone();
        if (c.state !== 'running') throw engineError(409, `Container ${c.id} is not running`);
        finish(137);
      },
      remove: async () => this.removeContainer(c.id),
      export: async () => {
        this.record('export', c.id);
        gone();
        return Readable.from([img.rootfs]);
      },
    };
  }

  async listContainers(labelKey: string): Promise<Array<{ id: string; labels: Record<string, string> }>> {
    this.record('listContainers', labelKey);
    return [...this.containers.values()]
      .filter((c) => labelKey in c.labels)
      .map((c) => ({ id: c.id, labels: { ...c.labels } }));
  }

  async removeContainer(id: string): Promise<void> {
    this.record('removeContainer', id);
    if (!this.containers.delete(id)) throw engineError(404, `No such container: ${id}`);
    this.stops.get(id)?.(137);
    this.stops.delete(id);
  }
}

/** The Dockerfile at the root of a build context; the rest of the context is read and dropped. */
async function dockerfileOf(context: Readable): Promise<string> {
  let text = '';
  const extract = tar.extract();
  extract.on('entry', (h, body, next) => {
    const chunks: Buffer[] = [];
    const wanted = h.name.replace(/^\.\//, '') === 'Dockerfile';
    body.on('data', (c) => {
      if (wanted) chunks.push(c as Buffer);
    });
    body.on('end', () => {
      if (chunks.length) text = Buffer.concat(chunks).toString('utf8');
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    context.on('error', reject);
    context.pipe(extract);
  });
  if (!text) throw new Error('FakeEngine: the build context has no Dockerfile');
  return text;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * An image of one layer holding `files`: its `docker save` archive (legacy
 * layout, as the engines of the integration tests write it) and the same
 * files as its export. The ID is the config's digest, as the engine's is.
 */
export async function fakeImage(opts: {
  files: LayerEntry[];
  labels?: Record<string, string>;
  config?: Record<string, unknown>;
  tags?: string[];
  created?: string;
  history?: object[];
}): Promise<FakeImage> {
  const layer = await layerTar(opts.files);
  const labels = opts.labels ?? {};
  const created = opts.created ?? '2026-01-01T00:00:00Z';
  const config = { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'], ...opts.config, Labels: labels };
  const cfg = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created,
      config,
      history: opts.history ?? [],
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] },
    }),
  );
  const id = `sha256:${sha(cfg)}`;
  const manifest = Buffer.from(
    JSON.stringify([{ Config: `${sha(cfg)}.json`, RepoTags: opts.tags ?? [], Layers: ['l0/layer.tar'] }]),
  );
  const archive = await tarBuffer([
    { header: { name: 'l0/layer.tar', size: layer.length } as tar.Header, body: layer },
    { header: { name: `${sha(cfg)}.json`, size: cfg.length } as tar.Header, body: cfg },
    { header: { name: 'manifest.json', size: manifest.length } as tar.Header, body: manifest },
  ]);
  return {
    id,
    tags: [...(opts.tags ?? [])],
    labels,
    config,
    architecture: 'amd64',
    created,
    size: layer.length,
    archive,
    rootfs: layer,
  };
}
