/**
 * Proves that nothing served to a build stayed in the image: streams the
 * image out of the engine (`docker save`) and reads every layer of it.
 * A layer holding a file under a licensed path, or a file whose content is
 * one of the served files (or a member of a served tarball), is a leak,
 * even when a later layer deletes it: the bytes are still in the image.
 * The image config and history are read too: they are what `docker
 * inspect`, `docker history` and `singularity inspect` show every user.
 */
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { OperationError } from '../errors';
import { sha256Stream } from '../util/files';

/** Licensed paths (layer-relative, no leading slash). Whiteouts are not files. */
const LICENSED = [/^opt\/cray(\/|$)/, /^opt\/cray-deps(\/|$)/, /^usr\/lib64\/libcxi\.so/];

export interface Leak {
  /** The layer member, or 'image config'. */
  layer: string;
  /** A path in the layer, or the config field (`config.Env[3]`, `history[7]`). */
  path: string;
  why: 'licensed path' | 'served content' | 'served digest' | 'server URL' | 'server prefix';
}

/** What must not appear in the image's config or history, besides the served digests. */
export interface ScanNeedles {
  digests: Map<string, string>;
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
}

export function isLicensedPath(p: string): boolean {
  const clean = p.replace(/^\.?\//, '');
  const base = path.posix.basename(clean);
  if (base.startsWith('.wh.')) return false;
  return LICENSED.some((re) => re.test(clean));
}

/** Digests of the served files and, for tarballs, of their members (non-empty only). */
export async function servedDigests(dir: string, rels: Iterable<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const rel of rels) {
    const file = path.join(dir, rel);
    out.set(await sha256Stream(createReadStream(file)), rel);
    const head = Buffer.alloc(512);
    const fh = await fs.open(file, 'r');
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    await fh.close();
    const gz = head[0] === 0x1f && head[1] === 0x8b;
    if (!gz && !(bytesRead >= 262 && head.toString('latin1', 257, 262) === 'ustar')) continue;
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      if (h.type !== 'file' || !h.size) {
        stream.resume();
        stream.on('end', next);
        return;
      }
      sha256Stream(stream as unknown as Readable).then((d) => {
        out.set(d, `${rel}:${h.name}`);
        next();
      }, next);
    });
    const src = createReadStream(file);
    await pipeline(gz ? src.pipe(createGunzip()) : src, extract);
  }
  return out;
}

/**
 * Checks one image config (the JSON `docker save` writes beside the
 * layers): no served digest anywhere in it, no secret prefix argument of
 * older definitions in the history, and no URL of the server in what a
 * container starts with (config and container_config: env, labels,
 * entrypoint, cmd, ...). The history may name the server's port: it is a
 * stable, non-secret build argument.
 */
export function scanImageConfig(text: string, needles: ScanNeedles): Leak[] {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return [];
  }
  // The image config, or a legacy per-layer `<id>/json` (it has a container_config too); not manifest.json.
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !['history', 'rootfs', 'config', 'container_config'].some((k) => k in doc)) return [];
  const leaks: Leak[] = [];
  const url = needles.serverPort ? new RegExp(`(localhost|127\\.0\\.0\\.1|\\[::1\\]|0\\.0\\.0\\.0):${needles.serverPort}(?!\\d)`) : undefined;
  const visit = (value: unknown, where: string, inStartConfig: boolean) => {
    if (typeof value === 'string') {
      for (const d of needles.digests.keys()) if (value.includes(d)) leaks.push({ layer: 'image config', path: where, why: 'served digest' });
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
  for (const [k, v] of Object.entries(doc)) visit(v, k, k === 'config' || k === 'container_config');
  return leaks;
}

/** Scans one layer tar stream. */
async function scanLayer(layer: string, stream: Readable, digests: Map<string, string>, result: LeakScanResult): Promise<void> {
  const extract = tar.extract();
  extract.on('entry', (h, entry, next) => {
    result.files++;
    if (isLicensedPath(h.name)) result.leaks.push({ layer, path: '/' + h.name.replace(/^\.?\//, ''), why: 'licensed path' });
    if (h.type !== 'file' || !h.size || digests.size === 0) {
      entry.resume();
      entry.on('end', next);
      return;
    }
    sha256Stream(entry as unknown as Readable).then((d) => {
      if (digests.has(d)) result.leaks.push({ layer, path: '/' + h.name.replace(/^\.?\//, ''), why: 'served content' });
      next();
    }, next);
  });
  await pipeline(stream, extract);
}

/**
 * Reads a `docker save` stream. Member order is not guaranteed and blobs are
 * not named by kind, so each member is sniffed: a tar (or gzip'd tar) is a
 * layer; anything else (JSON) is skipped.
 */
export async function scanImageArchive(archive: Readable, needles: ScanNeedles, signal?: AbortSignal): Promise<LeakScanResult> {
  const { digests } = needles;
  const result: LeakScanResult = { layers: 0, files: 0, bytes: 0, leaks: [] };
  const outer = tar.extract();
  outer.on('entry', (h, entry, next) => {
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
        result.leaks.push(...scanImageConfig(Buffer.concat(chunks).toString('utf8'), needles));
        next();
      });
      return;
    }
    if ((h.size ?? 0) < 512) {
      entry.resume();
      entry.on('end', next);
      return;
    }
    sniff(entry as unknown as Readable).then(async ({ kind, stream }) => {
      if (kind === 'zstd') throw new OperationError('leak-scan', `cannot read zstd-compressed layer ${h.name}`);
      if (kind === 'other') {
        stream.resume();
        await new Promise((r) => stream.on('end', r));
        return;
      }
      result.layers++;
      await scanLayer(h.name, kind === 'gzip' ? stream.pipe(createGunzip()) : stream, digests, result);
    }).then(() => next(), next);
  });
  await pipeline(archive, outer, { signal });
  return { ...result, leaks: orderedLeaks(result.leaks) };
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
  return [...seen.values()].sort((a, b) => rank(a) - rank(b) || (a.layer < b.layer ? -1 : a.layer > b.layer ? 1 : 0) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) || (a.why < b.why ? -1 : a.why > b.why ? 1 : 0));
}

/** Looks at the first 512 bytes without losing them. */
function sniff(entry: Readable): Promise<{ kind: 'tar' | 'gzip' | 'zstd' | 'other'; stream: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const finish = () => {
      entry.off('data', onData);
      entry.off('end', onEnd);
      entry.off('error', reject);
      entry.pause();
      const head = Buffer.concat(chunks);
      const rest = new PassThrough();
      rest.write(head);
      if (ended) rest.end();
      else entry.pipe(rest);
      let kind: 'tar' | 'gzip' | 'zstd' | 'other' = 'other';
      if (head[0] === 0x1f && head[1] === 0x8b) kind = 'gzip';
      else if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) kind = 'zstd';
      else if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') kind = 'tar';
      resolve({ kind, stream: rest });
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (size >= 512) finish();
    };
    const onEnd = () => {
      ended = true;
      finish();
    };
    entry.on('data', onData);
    entry.on('end', onEnd);
    entry.on('error', reject);
  });
}
