/**
 * Proves that nothing licensed served to a build stayed in the image, and
 * that each served tool stayed exactly where the recipe says (roles.ts):
 * streams the image out of the engine (`docker save`) and reads every
 * layer of it. A layer holding a file under a licensed path, or a file
 * whose content is a licensed served file (or a member of a served
 * tarball), is a leak, even when a later layer deletes it: the bytes are
 * still in the image. The image config and history are read too: they are
 * what `docker inspect`, `docker history` and `singularity inspect` show
 * every user.
 */
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { OperationError } from '../errors';
import { sha256Stream } from '../util/files';
import { kindOfHead, peek } from '../util/peek';
import { isRegularMember, memberPath } from '../util/tar-member';
import { escapeForMessage } from '../validate/names';
import { parseDocument, parseJsonDocument } from '../validate/schema';
import { archiveManifestSchema, imageConfigSchema, shallowJsonSchema } from '../validate/schemas/docker';
import { judgeTools, type PathEvent, type ServedTool, type Sighting, type ToolProblem } from './roles';

/** What a layer's file not hashed stands for (no digest is empty): a hard link to it matches nothing. */
const NOT_HASHED = '';

/** Licensed paths (layer-relative, no leading slash). Whiteouts are not files. */
const LICENSED = [/^opt\/cray(\/|$)/, /^opt\/cray-deps(\/|$)/, /^usr\/lib64\/libcxi\.so/];

export interface Leak {
  /** The layer member, or 'image config'. */
  layer: string;
  /** A path in the layer, or the config field (`config.Env[3]`, `history[7]`). */
  path: string;
  why: 'licensed path' | 'served content' | 'served digest' | 'server URL' | 'server prefix';
}

/** What must not appear in the image (licensed digests), and the tools that must. */
export interface ScanNeedles {
  /** Digests of the licensed served files and of their tarballs' members. */
  digests: Map<string, string>;
  /**
   * The size of every file whose digest is in `digests` (servedDigests
   * gives both). A digest is equal only where the sizes are, so a file of
   * any other size is not hashed. None: every file is hashed.
   */
  sizes?: ReadonlySet<number>;
  /** Served tools, each expected at its path with its digest. */
  tools?: ServedTool[];
  /** The file server's port: a URL to it must not stay in env, labels, entrypoint or cmd. */
  serverPort?: number;
}

/** Largest non-layer member read whole (configs are KiB; a bigger one is not a config). */
const MAX_CONFIG_BYTES = 64 << 20;

export interface LeakScanResult {
  layers: number;
  files: number;
  bytes: number;
  leaks: Leak[];
  /** Tools missing, changed or found at another path. */
  toolProblems: ToolProblem[];
  /** Tools found at their path with the served bytes. */
  tools: number;
}

/** The per-layer observations the tool judgement needs. */
interface ToolWatch {
  tools: ServedTool[];
  /** Layer-relative declared paths (no leading slash) -> absolute. */
  paths: Map<string, string>;
  digests: Set<string>;
  events: Map<string, PathEvent[]>;
  sightings: Sighting[];
}

/** Digests and sizes of served tools (the whole file only: a tool is not unpacked). */
export async function toolDigests(dir: string, tools: Array<{ file: string; path: string }>): Promise<ServedTool[]> {
  const out: ServedTool[] = [];
  for (const t of tools) {
    const file = path.join(dir, t.file);
    const { size } = await fs.stat(file);
    out.push({ ...t, size, digest: await sha256Stream(createReadStream(file)) });
  }
  return out;
}

export function isLicensedPath(p: string): boolean {
  const clean = memberPath(p);
  const base = path.posix.basename(clean);
  if (base.startsWith('.wh.')) return false;
  return LICENSED.some((re) => re.test(clean));
}

/** What the scan looks for in each file's bytes: the served contents' digests, and their sizes. */
export interface ServedDigests {
  digests: Map<string, string>;
  sizes: Set<number>;
}

/**
 * Digests of the served files and, for tarballs, of their members
 * (non-empty only: an empty file is nobody's content, and the digest of
 * nothing could turn up in any image config), with the size of each, made
 * together so that no digest is without its size.
 */
export async function servedDigests(dir: string, rels: Iterable<string>): Promise<ServedDigests> {
  const out = new Map<string, string>();
  const sizes = new Set<number>();
  for (const rel of rels) {
    const file = path.join(dir, rel);
    const { size } = await fs.stat(file);
    if (size === 0) continue;
    out.set(await sha256Stream(createReadStream(file)), rel);
    sizes.add(size);
    const head = Buffer.alloc(512);
    const fh = await fs.open(file, 'r');
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    await fh.close();
    const kind = kindOfHead(head.subarray(0, bytesRead));
    const gz = kind === 'gzip';
    if (kind !== 'gzip' && kind !== 'tar') continue;
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      if (!isRegularMember(h) || !h.size) {
        stream.resume();
        stream.on('end', next);
        return;
      }
      sha256Stream(stream as unknown as Readable).then((d) => {
        out.set(d, `${rel}:${h.name}`);
        sizes.add(h.size as number);
        next();
      }, next);
    });
    const src = createReadStream(file);
    await pipeline(gz ? src.pipe(createGunzip()) : src, extract);
  }
  return { digests: out, sizes };
}

/**
 * Which file sizes the scan must hash: those of the served contents and
 * of the tools (a file of any other size cannot have their digest).
 * Undefined, so every file is hashed, when a size is not known.
 */
export function sizesToHash(needles: ScanNeedles): ReadonlySet<number> | undefined {
  const tools = needles.tools ?? [];
  if (!needles.sizes || tools.some((t) => t.size === undefined)) return undefined;
  return new Set([...needles.sizes, ...tools.map((t) => t.size as number)]);
}

/**
 * Checks one image config (the JSON `docker save` writes beside the
 * layers): no served digest anywhere in it, no secret prefix argument of
 * older definitions in the history, and no URL of the server in what a
 * container starts with (config and container_config: env, labels,
 * entrypoint, cmd, ...). The history may name the server's port: it is a
 * stable, non-secret build argument.
 */
export function scanImageConfig(text: string, needles: ScanNeedles, source = 'image config'): Leak[] {
  // Any JSON, but JSON: a member that is not (or is nested past reason) is a damaged archive, named.
  const doc = parseJsonDocument(shallowJsonSchema, text, source, 'bad-archive');
  // The image config, or a legacy per-layer `<id>/json` (it has a container_config too); not manifest.json.
  if (
    doc === null ||
    typeof doc !== 'object' ||
    Array.isArray(doc) ||
    !['history', 'rootfs', 'config', 'container_config'].some((k) => Object.hasOwn(doc, k))
  )
    return [];
  // The fields sifkit reads elsewhere have their types (validate/schemas/docker.ts); the rest is scanned as it is.
  if (Object.hasOwn(doc, 'rootfs')) parseDocument(imageConfigSchema, doc, source, 'bad-archive');
  const leaks: Leak[] = [];
  const url = needles.serverPort
    ? new RegExp(`(localhost|127\\.0\\.0\\.1|\\[::1\\]|0\\.0\\.0\\.0):${needles.serverPort}(?!\\d)`)
    : undefined;
  const visit = (value: unknown, where: string, inStartConfig: boolean) => {
    if (typeof value === 'string') {
      for (const d of needles.digests.keys())
        if (value.includes(d)) leaks.push({ layer: 'image config', path: where, why: 'served digest' });
      if (/SERVER_PREFIX=/.test(value)) leaks.push({ layer: 'image config', path: where, why: 'server prefix' });
      if (inStartConfig && url?.test(value)) leaks.push({ layer: 'image config', path: where, why: 'server URL' });
    } else if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${where}[${i}]`, inStartConfig));
    else if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) {
        // Keys too: a label's name is as visible as its value.
        visit(k, `${where}.${k} (key)`, inStartConfig);
        visit(v, `${where}.${k}`, inStartConfig);
      }
  };
  for (const [k, v] of Object.entries(doc as Record<string, unknown>))
    visit(v, k, k === 'config' || k === 'container_config');
  return leaks;
}

/** Scans one layer tar stream. */
async function scanLayer(
  layer: string,
  stream: Readable,
  digests: Map<string, string>,
  result: LeakScanResult,
  watch: ToolWatch,
  hashSizes: ReadonlySet<number> | undefined,
): Promise<void> {
  const extract = tar.extract();
  // This layer's files by path, so a hard link is judged by what it links to.
  const inLayer = new Map<string, string>();
  const deleted = new Set<string>();
  const written = new Map<string, PathEvent>();
  const judge = (name: string, d: string) => {
    if (digests.has(d)) result.leaks.push({ layer, path: '/' + name, why: 'served content' });
    if (watch.digests.has(d)) watch.sightings.push({ layer, path: '/' + name, digest: d });
    if (watch.paths.has(name)) written.set(name, { layer, kind: 'file', digest: d });
  };
  extract.on('entry', (h, entry, next) => {
    result.files++;
    const name = memberPath(h.name);
    if (isLicensedPath(h.name)) result.leaks.push({ layer, path: '/' + name, why: 'licensed path' });
    const base = path.posix.basename(name);
    if (base.startsWith('.wh.')) {
      // A whiteout deletes a path of the layers below (an opaque one, a directory's contents).
      const dir = path.posix.dirname(name);
      const gone = base === '.wh..wh..opq' ? dir : path.posix.join(dir, base.slice(4));
      for (const p of watch.paths.keys())
        if (p.startsWith(gone + '/') || (base !== '.wh..wh..opq' && p === gone) || gone === '.') deleted.add(p);
    } else if (h.type === 'link' && h.linkname !== undefined && inLayer.has(memberPath(h.linkname))) {
      judge(name, inLayer.get(memberPath(h.linkname)) as string);
    } else if (!isRegularMember(h) && watch.paths.has(name)) {
      written.set(name, { layer, kind: 'other' });
    }
    // Every member the image holds as a file is judged by its bytes, whatever its tar type flag says.
    if (!isRegularMember(h) || (digests.size === 0 && watch.digests.size === 0)) {
      if (isRegularMember(h) && watch.paths.has(name)) written.set(name, { layer, kind: 'file' });
      entry.resume();
      entry.on('end', next);
      return;
    }
    // Of a size no served content or tool has: its digest could be none of theirs (most files of an image).
    if (hashSizes && !hashSizes.has(h.size ?? 0) && !watch.paths.has(name)) {
      inLayer.set(name, NOT_HASHED);
      entry.resume();
      entry.on('end', next);
      return;
    }
    sha256Stream(entry as unknown as Readable).then((d) => {
      inLayer.set(name, d);
      // An empty file is nobody's content, but it may still stand at a tool's path.
      if (h.size) judge(name, d);
      else if (watch.paths.has(name)) written.set(name, { layer, kind: 'file', digest: d });
      next();
    }, next);
  });
  await pipeline(stream, extract);
  // Keyed by the absolute path, as the tools declare it; a layer's deletion before its own write.
  const add = (p: string, e: PathEvent) => {
    const abs = watch.paths.get(p) as string;
    watch.events.set(abs, [...(watch.events.get(abs) ?? []), e]);
  };
  for (const p of deleted) add(p, { layer, kind: 'deleted' });
  for (const [p, e] of written) add(p, e);
}

/**
 * Reads a `docker save` stream. Member order is not guaranteed and blobs are
 * not named by kind, so each member is sniffed: a tar (or gzip'd tar) is a
 * layer; text (JSON, VERSION) is passed over; anything else is refused.
 */
export async function scanImageArchive(
  archive: Readable,
  needles: ScanNeedles,
  signal?: AbortSignal,
): Promise<LeakScanResult> {
  const { digests } = needles;
  const tools = needles.tools ?? [];
  const hashSizes = sizesToHash(needles);
  const result: LeakScanResult = { layers: 0, files: 0, bytes: 0, leaks: [], toolProblems: [], tools: 0 };
  const watch: ToolWatch = {
    tools,
    paths: new Map(tools.map((t) => [t.path.replace(/^\//, ''), t.path])),
    digests: new Set(tools.map((t) => t.digest)),
    events: new Map(),
    sightings: [],
  };
  let order: string[] | undefined;
  const outer = tar.extract();
  outer.on('entry', (h, entry, next) => {
    // Torn down with the archive's stream (Ctrl-C, another reader of it failed), a member errs late: never a crash.
    (entry as unknown as Readable).on('error', () => undefined);
    result.bytes += h.size ?? 0;
    if (h.type !== 'file') {
      entry.resume();
      entry.on('end', next);
      return;
    }
    if (h.name.endsWith('.json') || h.name.endsWith('/json')) {
      if ((h.size ?? 0) > MAX_CONFIG_BYTES) {
        next(new OperationError('leak-scan', `image member ${h.name} is ${h.size} bytes: too big for an image config`));
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      entry.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        // A member that fails its schema ends the scan with its one line (handed to the tar stream, never thrown here).
        try {
          if (h.name === 'manifest.json') order = layerOrder(text);
          result.leaks.push(...scanImageConfig(text, needles, `image member ${escapeForMessage(h.name)}`));
        } catch (e) {
          next(e as Error);
          return;
        }
        next();
      });
      return;
    }
    // No size floor: a gzip'd layer holding one small file is well under 512 bytes.
    peek(entry as unknown as Readable, 512)
      .then(async ({ head, body: stream }) => {
        // Refused below, its late error (the outer stream torn down) is no crash; read, its reader hears it.
        stream.on('error', () => undefined);
        const kind = kindOfHead(head);
        if (kind === 'zstd') throw new OperationError('leak-scan', `cannot read zstd-compressed layer ${h.name}`);
        // What is neither a tar nor text (JSON, VERSION) could be a layer in a form not read here
        // (xz, bzip2, lz4): the gate refuses what it cannot judge rather than pass it unread.
        if (kind === 'other' && !isText(head))
          throw new OperationError(
            'leak-scan',
            `image member ${escapeForMessage(h.name)} is neither a tar, a gzip'd tar nor text: the scan cannot read it`,
          );
        // A layer of its end marker alone has no file to judge.
        if (kind === 'other' || kind === 'empty-tar') {
          stream.resume();
          await new Promise((resolve, reject) => {
            stream.on('end', resolve);
            stream.on('error', reject);
          });
          return;
        }
        result.layers++;
        await scanLayer(
          h.name,
          kind === 'gzip' ? stream.pipe(createGunzip()) : stream,
          digests,
          result,
          watch,
          hashSizes,
        );
      })
      .then(() => next(), next);
  });
  await pipeline(archive, outer, { signal });
  if (tools.length > 0 && order === undefined)
    throw new OperationError(
      'leak-scan',
      'the image archive has no manifest.json naming its layers in order: cannot judge the served tools',
    );
  const toolProblems = judgeTools(tools, watch.sightings, watch.events, order ?? []);
  return {
    ...result,
    leaks: orderedLeaks(result.leaks),
    toolProblems,
    tools: tools.filter((t) => !toolProblems.some((p) => p.file === t.file)).length,
  };
}

/** The layers of the archive's (first) image, bottom first, from `docker save`'s manifest.json. */
function layerOrder(text: string): string[] {
  return parseJsonDocument(archiveManifestSchema.min(1), text, 'image member manifest.json', 'bad-archive')[0].Layers;
}

/** No NUL and no control byte but tab, newline, form feed, carriage return: JSON, a VERSION file. */
function isText(head: Buffer): boolean {
  return head.every((b) => b >= 0x20 || b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d);
}

/**
 * Leaks once each, in an order that does not depend on the archive's member
 * order (which `docker save` does not fix): the config's first, then by layer
 * and path, so the same image always reports the same first leak.
 */
export function orderedLeaks(leaks: Leak[]): Leak[] {
  const seen = new Map<string, Leak>();
  for (const l of leaks) seen.set(`${l.layer}\0${l.path}\0${l.why}`, l);
  const rank = (l: Leak) => (l.layer === 'image config' ? 0 : 1);
  return [...seen.values()].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (a.layer < b.layer ? -1 : a.layer > b.layer ? 1 : 0) ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) ||
      (a.why < b.why ? -1 : a.why > b.why ? 1 : 0),
  );
}
