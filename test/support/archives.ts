/**
 * Small `docker save` archives made by hand, for inputs the engine would
 * never produce (tar-slip, writes through symlinks) and for the OCI layout
 * with gzip layers that newer engines write.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';

export interface LayerEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  content?: string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

/** A tar's bytes, packed by `pack` (tar-stream's own, or sifkit's for mksquashfs). */
export async function tarBuffer(
  entries: Array<{ header: tar.Header; body?: Buffer }>,
  pack: tar.Pack = tar.pack(),
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    (pack as unknown as Readable).on('data', (c: Buffer) => chunks.push(c));
    (pack as unknown as Readable).on('end', resolve);
    (pack as unknown as Readable).on('error', reject);
  });
  for (const e of entries) pack.entry(e.header, e.body ?? Buffer.alloc(0));
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Each member's header of a tar's bytes, as tar-stream's extractor reads it. */
export async function tarHeaders(bytes: Buffer): Promise<tar.Header[]> {
  const out: tar.Header[] = [];
  const extract = tar.extract();
  extract.on('entry', (h, body, next) => {
    out.push(h);
    body.resume();
    body.on('end', next);
  });
  const done = new Promise<void>((r, j) => (extract.on('finish', () => r()), extract.on('error', j)));
  Readable.from([bytes]).pipe(extract);
  await done;
  return out;
}

/**
 * Symlink cases for the tar sifkit feeds mksquashfs: names where a pax
 * header is needed (long, non-ASCII, past what a ustar prefix holds) and
 * where it is not, and targets with every leading component mksquashfs
 * strips from a pax path, at lengths each side of the 100-byte linkname
 * field up to nearly PATH_MAX.
 */
export const LINK_BASES = [
  's/plain',
  `l/${'n'.repeat(120)}`,
  'ü/λ',
  `deep/${'a'.repeat(90)}/${'b'.repeat(90)}/${'c'.repeat(90)}`,
];
export const LINK_TARGETS = [
  '/abs/x',
  '../up',
  './dot',
  'plain',
  '/ü/λ',
  `/${'p'.repeat(99)}`,
  `/${'q'.repeat(100)}`,
  `../${'y'.repeat(252)}`,
  `./${'z'.repeat(998)}`,
  `../${'w'.repeat(3997)}`,
];
/** Every base with every target, as `BASE-tI`. */
export const LINK_CASES = LINK_BASES.flatMap((b) => LINK_TARGETS.map((target, i) => ({ name: `${b}-t${i}`, target })));

export function layerTar(entries: LayerEntry[]): Promise<Buffer> {
  return tarBuffer(
    entries.map((e) => ({
      header: {
        name: e.name,
        type: e.type ?? 'file',
        mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644),
        linkname: e.linkname,
        mtime: new Date(0),
        uid: e.uid,
        gid: e.gid,
        uname: e.uname,
        gname: e.gname,
      } as tar.Header,
      body: e.content !== undefined ? Buffer.from(e.content) : undefined,
    })),
  );
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A legacy (Docker ≤ 24) archive, manifest last as moby writes it. */
export async function legacyArchive(file: string, layers: Buffer[], config: object = {}): Promise<void> {
  const cfg = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2026-01-01T00:00:00Z',
      config: { Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
      ...config,
    }),
  );
  const cfgName = `${sha(cfg)}.json`;
  const entries = layers.map((l, i) => ({
    header: { name: `l${i}/layer.tar`, size: l.length } as tar.Header,
    body: l,
  }));
  const manifest = Buffer.from(
    JSON.stringify([
      { Config: cfgName, RepoTags: ['fixture:latest'], Layers: layers.map((_, i) => `l${i}/layer.tar`) },
    ]),
  );
  await fs.writeFile(
    file,
    await tarBuffer([
      ...entries,
      { header: { name: cfgName } as tar.Header, body: cfg },
      { header: { name: 'manifest.json' } as tar.Header, body: manifest },
    ]),
  );
}

/** Rewrites a legacy archive as an OCI layout with gzip layers, manifest first. */
export async function toOciLayout(legacy: string, out: string): Promise<void> {
  const members = new Map<string, Buffer>();
  const links = new Map<string, string>();
  const extract = tar.extract();
  extract.on('entry', (h, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: unknown) => chunks.push(c as Buffer));
    body.on('end', () => {
      if (h.type === 'file') members.set(h.name, Buffer.concat(chunks));
      if (h.type === 'symlink') links.set(h.name, h.linkname ?? '');
      next();
    });
  });
  const { createReadStream } = await import('node:fs');
  const { pipeline } = await import('node:stream/promises');
  await pipeline(createReadStream(legacy), extract);
  const manifest = JSON.parse((members.get('manifest.json') as Buffer).toString())[0] as {
    Config: string;
    RepoTags: string[];
    Layers: string[];
  };
  const blob = (name: string): Buffer => {
    const direct = members.get(name);
    if (direct) return direct;
    const link = links.get(name) as string;
    return members.get(`${name.split('/')[0]}/${link}`.replace(/[^/]+\/\.\.\//, '')) as Buffer;
  };
  const cfg = blob(manifest.Config);
  const gz = manifest.Layers.map((l) => gzipSync(blob(l)));
  const blobs = [cfg, ...gz];
  const out2: Array<{ header: tar.Header; body?: Buffer }> = [];
  const cfgPath = `blobs/sha256/${sha(cfg)}`;
  const layerPaths = gz.map((g) => `blobs/sha256/${sha(g)}`);
  out2.push({
    header: { name: 'manifest.json' } as tar.Header,
    body: Buffer.from(JSON.stringify([{ Config: cfgPath, RepoTags: manifest.RepoTags, Layers: layerPaths }])),
  });
  out2.push({ header: { name: 'oci-layout' } as tar.Header, body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') });
  out2.push({ header: { name: 'index.json' } as tar.Header, body: Buffer.from('{"schemaVersion":2,"manifests":[]}') });
  const seen = new Set<string>();
  for (const b of blobs) {
    const p = `blobs/sha256/${sha(b)}`;
    if (seen.has(p)) continue;
    seen.add(p);
    out2.push({ header: { name: p } as tar.Header, body: b });
  }
  await fs.writeFile(out, await tarBuffer(out2));
}
