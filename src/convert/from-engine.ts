/**
 * The engine converter: an image in the engine to a SIF in one pass, with
 * no copy of the image on disk. The engine flattens the layers itself when
 * it exports a created (never started) container; that stream goes through
 * to `mksquashfs -tar` as it arrives, and apptainer's additions follow it.
 *
 * What the export shows that is the engine's, not the image's: the init
 * layer's `.dockerenv`, empty `/etc/hostname`, `/etc/hosts`,
 * `/etc/resolv.conf`, `/dev/console`, empty `/dev/pts` and `/dev/shm`, and
 * an `/etc/mtab` link. Those are
 * left out, so apptainer's own empty hosts and resolv.conf go in as for an
 * image without them. The image's own copies of those files are hidden by
 * the engine and cannot be had from an export; apptainer binds the host's
 * over them at run time anyway.
 */
import { pipeline } from 'node:stream/promises';
import { InputError } from '../errors';
import { inspectImageRef } from '../engine/client';
import { exportContainer } from '../engine/orphans';
import type { ImageDetails, ImageEngine } from '../engine/engine';
import type { ImageConfig } from './archive';
import { isSingularityPath } from './additions';
import { normalizeMemberPath, toEntry, type EntryType, type TarHeader } from './flatten';
import { dataPadding, headerBlocks } from './squash-tar';
import { tarPass, type MemberEdit } from './tar-pass';
import { TAR_BLOCK } from '../util/tar-header';
import type { WalkedMember } from '../util/tar-walk';
import { elfArch } from './singularity';
import {
  ociConfig,
  prepareImage,
  squashTarToSif,
  tarHeader,
  type ConvertResult,
  type Fed,
  type Prepared,
  type SquashOptions,
} from './squash';

/** Marks our export containers, with host:pid, so a later run can remove those of a killed one. */
export const CONVERT_LABEL = 'io.sifkit.convert';

/** Init-layer placeholders: empty files, and the mtab link, the engine makes in every container. */
function isInitPlaceholder(p: string, h: TarHeader): boolean {
  if (p === '.dockerenv') return true;
  if (['etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'dev/console'].includes(p))
    return (h.type ?? 'file') === 'file' && !h.size;
  return p === 'etc/mtab' && h.type === 'symlink' && h.linkname === '/proc/mounts';
}

/** Init-layer directories: left out when empty (apptainer mounts its own /dev). */
const INIT_DIRS = new Set(['dev/pts', 'dev/shm']);

/**
 * Directories the init layer writes into: the export shows them with the
 * time the export container was created, a different one every run. They
 * get the image's creation time instead, so two conversions are the same
 * (the image's own time for them is hidden by the engine, as their files are).
 */
const INIT_TOUCHED = new Set(['dev', 'etc', 'proc', 'sys', 'dev/pts', 'dev/shm']);

/** Where an ELF tells the arch: any executable in the usual bin directories. */
const BIN_DIR = /^(usr\/)?s?bin\/[^/]+$/;

const TYPES: Record<string, EntryType> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'directory',
  symlink: 'symlink',
  'character-device': 'character-device',
  'block-device': 'block-device',
  fifo: 'fifo',
};

/** The image config in the shape a `docker save` archive carries it. */
function configFromInspect(info: ImageDetails): ImageConfig {
  return { architecture: info.architecture, created: info.created, config: ociConfig(info.config) };
}

/**
 * How the export's members go on to mksquashfs: the edit for each (the
 * engine's own files left out, the init layer's directories given the
 * image's time, every header sifkit's own) and the trailer (apptainer's
 * additions, the end of the archive); what went in, counted.
 */
function exportEdits(ref: string, prep: Prepared, fixPerms: boolean | undefined) {
  const seen = new Set<string>();
  const fed: Fed = { files: 0, bytes: 0 };
  // An init-layer directory waits for its first child: the export
  // lists a directory's members right after it, so none means empty.
  let held: { path: string; blocks: Buffer } | undefined;
  const where = `export of ${ref}`;
  const edit = ({ header: h }: WalkedMember): MemberEdit => {
    const p = normalizeMemberPath(h.name, where);
    let before: Buffer | undefined;
    if (held && p.startsWith(`${held.path}/`)) {
      before = held.blocks;
      seen.add(held.path);
      fed.files++;
    }
    held = undefined;
    const blocks = (own: Buffer | null): Buffer | null =>
      before ? Buffer.concat([before, own ?? Buffer.alloc(0)]) : own;
    if (!p || isSingularityPath(p) || isInitPlaceholder(p, h)) return { blocks: blocks(null) };
    if (INIT_DIRS.has(p) && h.type === 'directory') {
      const entry = { ...toEntry(h, 'directory'), mtime: prep.buildDate };
      held = { path: p, blocks: headerBlocks(tarHeader(p, entry, fixPerms)) };
      return { blocks: blocks(null) };
    }
    seen.add(p);
    fed.files++;
    if (h.type === 'link') {
      const linkname = normalizeMemberPath(h.linkname ?? '', where);
      return { blocks: blocks(headerBlocks({ ...tarHeader(p, toEntry(h, 'file')), type: 'link', linkname, size: 0 })) };
    }
    // An unknown type flag is a file, as tar reads it (and the leak scan judged it: util/tar-member.ts).
    const type = h.type ?? 'file';
    const kind = TYPES[type];
    if (!kind) throw new InputError('bad-member', `${where}: ${p} is a tar ${type}, which a SIF cannot hold`);
    const entry = toEntry(h, kind);
    if (kind === 'directory' && INIT_TOUCHED.has(p)) entry.mtime = prep.buildDate;
    const own = blocks(headerBlocks(tarHeader(p, entry, fixPerms)));
    if (kind !== 'file') return { blocks: own };
    fed.bytes += entry.size;
    if (fed.elfArch || entry.size < 20 || !BIN_DIR.test(p)) return { blocks: own };
    return { blocks: own, peek: { bytes: 20, seen: (head) => (fed.elfArch = fed.elfArch ?? elfArch(head)) } };
  };
  const trailer = (): Buffer => {
    const out: Buffer[] = [];
    for (const a of prep.additions) {
      if (a.ifAbsent && seen.has(a.path)) continue;
      const content = a.content ?? Buffer.alloc(0);
      out.push(headerBlocks(tarHeader(a.path, a.entry)), content, dataPadding(content.length));
      fed.files++;
    }
    out.push(Buffer.alloc(2 * TAR_BLOCK));
    return Buffer.concat(out);
  };
  return { edit, trailer, fed };
}

/** Converts the engine's image `ref` into `out` (a SIF). */
export async function convertFromEngine(
  engine: ImageEngine,
  ref: string,
  out: string,
  opts: SquashOptions & { info?: ImageDetails },
): Promise<ConvertResult> {
  const info = opts.info ?? (await inspectImageRef(engine, ref));
  const prep = prepareImage(configFromInspect(info), info.id, { bootstrap: 'docker-daemon', from: ref }, opts);
  const container = await exportContainer(engine, info.id, CONVERT_LABEL, opts.signal);
  try {
    return await squashTarToSif(out, info.id, prep, opts, () => {
      const { edit, trailer, fed } = exportEdits(ref, prep, opts.fixPerms);
      const pass = tarPass(edit, trailer, `the export of ${ref}`);
      const done = container.export().then(async (stream) => {
        await pipeline(stream, pass, { signal: opts.signal });
        return fed;
      });
      return { streams: [pass], fed: done, stop: (e) => pass.destroy(e) };
    });
  } finally {
    await container.remove().catch(() => undefined);
  }
}
