/**
 * Random access to a `docker save` archive on disk. Member order is not
 * guaranteed (the manifest is usually last), so we index the archive by
 * walking its tar headers and seeking over the bodies: cost grows with the
 * number of members, not with the image's size. Each layer is then read as
 * a byte range of the archive, decompressed when its magic says so, and
 * checked as it is read against the diff ID the config names for it: the
 * config's digest is the image ID, so an archive whose config is the
 * image's but whose layer bytes are not is refused, not converted.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { createGunzip } from 'node:zlib';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import { InputError, RefusedError, errnoCode, isSifkitError } from '../errors';
import { openRegular } from '../util/files';
import { TAR_BLOCK, tarChecksumOk, tarNumber } from '../util/tar-header';
import { paxRecords, tarString } from '../util/tar-walk';
import { escapeForMessage } from '../validate/names';
import { parseJsonDocument } from '../validate/schema';
import { archiveManifestSchema, imageConfigSchema, type ImageConfig } from '../validate/schemas/docker';

export type { ImageConfig };

interface Member {
  offset: number;
  size: number;
  /** Symlink members (moby links identical layers this way). */
  linkTo?: string;
}

export interface DockerArchive {
  file: string;
  /** `sha256:<hex>` of the config blob: the image ID the engine shows. */
  imageId: string;
  configBytes: Buffer;
  config: ImageConfig;
  repoTags: string[];
  layerCount: number;
  /** Each layer's member, bottom first, links resolved: how a reader of the same bytes names it. */
  layerNames: string[];
  /** Where each layer's member starts in the file: the order a reader of the stream met them in. */
  layerOffsets: number[];
  /**
   * The layer's tar, decompressed. Read to its end, it errs with a
   * RefusedError when its bytes are not the diff ID the config names.
   */
  openLayer(index: number): Promise<Readable>;
}

const BLOCK = TAR_BLOCK;

/** Names every regular and symlink member with where its data lies. */
export async function indexArchive(file: string): Promise<Map<string, Member>> {
  const bad = (m: string): never => {
    throw new InputError('bad-archive', `${file}: not a readable docker archive: ${m}`);
  };
  let fh;
  try {
    fh = await openRegular(file, 'docker archive');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError('unreadable-archive', `cannot open ${file}: ${errnoCode(e) ?? (e as Error).message}`);
  }
  const members = new Map<string, Member>();
  try {
    const fileSize = (await fh.stat()).size;
    const h = Buffer.alloc(BLOCK);
    let pos = 0;
    let longName: string | undefined;
    // A pax size= record: Go's tar writer (the engine's) puts a size of 8 GiB or more only there, the field zero.
    let paxSize: number | undefined;
    for (;;) {
      const { bytesRead } = await fh.read(h, 0, BLOCK, pos);
      if (bytesRead === 0) break; // a missing end-of-archive marker is tolerated, a cut member is not
      if (bytesRead < BLOCK) bad(`truncated at byte ${pos}`);
      if (h.every((b) => b === 0)) break;
      if (!tarChecksumOk(h)) bad(`bad tar header checksum at byte ${pos}`);
      const type = String.fromCharCode(h[156] || 0x30);
      const size = type !== 'x' && type !== 'L' && paxSize !== undefined ? paxSize : tarNumber(h, 124, 12);
      const dataAt = pos + BLOCK;
      if (dataAt + size > fileSize)
        bad(`truncated: member at byte ${pos} needs ${size} bytes, the file ends at ${fileSize}`);
      const prefix = h.subarray(257, 263).toString('latin1') === 'ustar\0' ? tarString(h, 345, 155) : '';
      let name = longName ?? (prefix ? `${prefix}/${tarString(h, 0, 100)}` : tarString(h, 0, 100));
      name = name.replace(/^\.\//, '');
      if (type === 'x' || type === 'L') {
        const body = Buffer.alloc(size);
        await fh.read(body, 0, size, dataAt);
        if (type === 'L') longName = tarString(body, 0, size);
        else {
          const records = paxRecords(body);
          longName = records.path ?? longName;
          paxSize = records.size !== undefined && /^\d+$/.test(records.size) ? Number(records.size) : paxSize;
        }
      } else {
        longName = undefined;
        paxSize = undefined;
      }
      if (type === '0' || type === '7') members.set(name, { offset: dataAt, size });
      else if (type === '2') members.set(name, { offset: 0, size: 0, linkTo: tarString(h, 157, 100) });
      pos = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await fh.close();
  }
  return members;
}

function resolveMember(members: Map<string, Member>, name: string, file: string): Member & { name: string } {
  let current = name;
  for (let hops = 0; hops < 8; hops++) {
    const m = members.get(current);
    if (!m) break;
    if (!m.linkTo) return { ...m, name: current };
    current = path.posix.normalize(path.posix.join(path.posix.dirname(current), m.linkTo));
  }
  throw new InputError(
    'bad-archive',
    `${file}: not a readable docker archive: member ${escapeForMessage(name)} is missing`,
  );
}

async function readMember(file: string, m: Member): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(m.size);
    await fh.read(buf, 0, m.size, m.offset);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Peeks at the first bytes of a stream without losing them. */
async function decompressed(raw: Readable): Promise<[Readable] | [Readable, Transform]> {
  const first: Buffer = await new Promise((resolve, reject) => {
    const onReadable = () => {
      const chunk = raw.read(4) as Buffer | null;
      if (chunk === null && !raw.readableEnded) return;
      cleanup();
      resolve(chunk ?? Buffer.alloc(0));
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const cleanup = () => {
      raw.off('readable', onReadable);
      raw.off('end', onEnd);
      raw.off('error', reject);
    };
    raw.on('readable', onReadable);
    raw.on('end', onEnd);
    raw.on('error', reject);
  });
  raw.unshift(first);
  if (first[0] === 0x1f && first[1] === 0x8b) return [raw, createGunzip()];
  if (first.readUInt32LE(0) === 0xfd2fb528)
    throw new InputError('zstd-layer', 'the image has zstd-compressed layers, which Node 20 cannot read', {
      hint: 'save the image with an engine that writes uncompressed or gzip layers',
    });
  return [raw];
}

/** A bare sha256 digest as the config writes diff IDs. */
const DIFF_ID = /^sha256:[0-9a-f]{64}$/;

/**
 * Passes a layer's decompressed bytes through, hashing them; at their end,
 * errs unless they are the diff ID the config names. A reader that stops
 * early has not read the layer whole, so it was not checked: every reader
 * here (tar-stream to the end of the stream) reads it whole.
 */
function checkedAgainst(diffId: string, what: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const got = `sha256:${hash.digest('hex')}`;
      if (got === diffId) return done();
      done(
        new RefusedError(
          'layer-mismatch',
          `${what} reads as ${got.slice(0, 19)}…, not the ${diffId.slice(0, 19)}… its image config names: the archive was altered or damaged`,
          { hint: 'remove the archive and save the image again (a release saves it again when it is gone)' },
        ),
      );
    },
  });
}

/**
 * The config's diff IDs, one per layer of the manifest. Anything else is
 * not an archive `docker save` writes (its layers could not be checked).
 */
function diffIdsOf(config: ImageConfig, layerCount: number, file: string): string[] {
  const ids = config.rootfs?.diff_ids ?? [];
  if (ids.length !== layerCount)
    throw new InputError(
      'bad-archive',
      `${file}: not a readable docker archive: its manifest names ${layerCount} layers, its image config ${ids.length} diff IDs`,
    );
  const bad = ids.find((id) => !DIFF_ID.test(id));
  if (bad !== undefined)
    throw new InputError(
      'bad-archive',
      `${file}: not a readable docker archive: its image config names a layer ${escapeForMessage(bad)}, not a sha256 digest`,
    );
  return ids;
}

/** Opens a `docker save` archive (legacy or OCI layout). */
export async function openDockerArchive(file: string): Promise<DockerArchive> {
  const members = await indexArchive(file);
  const manifestMember = members.get('manifest.json');
  if (!manifestMember) throw new InputError('bad-archive', `${file}: not a docker archive: it has no manifest.json`);
  const manifest = parseJsonDocument(
    archiveManifestSchema,
    (await readMember(file, manifestMember)).toString('utf8'),
    `${file}: manifest.json`,
    'bad-archive',
  );
  if (manifest.length !== 1)
    throw new InputError('bad-archive', `${file}: holds ${manifest.length} images; save exactly one`);
  const entry = manifest[0];
  const configBytes = await readMember(file, resolveMember(members, entry.Config, file));
  const config = parseJsonDocument(
    imageConfigSchema,
    configBytes.toString('utf8'),
    `${file}: ${escapeForMessage(entry.Config)}`,
    'bad-archive',
  );
  const layers = entry.Layers.map((l) => resolveMember(members, l, file));
  const diffIds = diffIdsOf(config, layers.length, file);
  return {
    file,
    imageId: `sha256:${createHash('sha256').update(configBytes).digest('hex')}`,
    configBytes,
    config,
    repoTags: entry.RepoTags ?? [],
    layerCount: layers.length,
    layerNames: layers.map((l) => l.name),
    layerOffsets: layers.map((l) => l.offset),
    async openLayer(i: number) {
      const m = layers[i];
      const check = checkedAgainst(diffIds[i], `${file}: layer ${i + 1} (${escapeForMessage(m.name)})`);
      const stages =
        m.size === 0
          ? [Readable.from([])]
          : await decompressed(
              createReadStream(file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 }),
            );
      // One chain: an error anywhere (a bad gzip, the file gone) reaches the reader through the check.
      return pipeline([...stages, check], () => undefined) as Transform;
    },
  };
}
