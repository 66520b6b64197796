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
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { InputError } from '../errors';
import { inspectImageRef } from '../engine/client';
import { exportContainer } from '../engine/orphans';
import type { ImageDetails, ImageEngine } from '../engine/engine';
import type { ImageConfig } from './archive';
import { isSingularityPath } from './additions';
import { normalizeMemberPath, toEntry, type EntryType, type TarHeader } from './flatten';
import { elfArch } from './singularity';
import {
  once,
  ociConfig,
  prepareImage,
  sniffHead,
  squashToSif,
  tarHeader,
  type ConvertResult,
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
    return await squashToSif(out, info.id, prep, opts, async (pack) => {
      const seen = new Set<string>();
      let files = 0;
      let bytes = 0;
      let elf: string | undefined;
      const extract = tar.extract();
      extract.on('entry', (h, body, next) => {
        passEntry(h as TarHeader, body as unknown as Readable).then(
          () => next(),
          (e: Error) => extract.destroy(e),
        );
      });
      // An init-layer directory waits for its first child: the export
      // lists a directory's members right after it, so none means empty.
      let held: { path: string; header: tar.Header } | undefined;
      const passEntry = async (h: TarHeader, body: Readable): Promise<void> => {
        const p = normalizeMemberPath(h.name, `export of ${ref}`);
        if (held) {
          if (p.startsWith(`${held.path}/`)) {
            await once(pack, held.header);
            seen.add(held.path);
            files++;
          }
          held = undefined;
        }
        if (!p || isSingularityPath(p) || isInitPlaceholder(p, h)) {
          body.resume();
          return;
        }
        if (INIT_DIRS.has(p) && h.type === 'directory') {
          body.resume();
          held = {
            path: p,
            header: tarHeader(p, { ...toEntry(h, 'directory'), mtime: prep.buildDate }, opts.fixPerms),
          };
          return;
        }
        seen.add(p);
        files++;
        const type = h.type ?? 'file';
        if (type === 'link') {
          body.resume();
          const target = normalizeMemberPath(h.linkname ?? '', `export of ${ref}`);
          await once(pack, { ...tarHeader(p, toEntry(h, 'file')), type: 'link', linkname: target, size: 0 });
          return;
        }
        const kind = TYPES[type];
        if (!kind)
          throw new InputError('bad-member', `export of ${ref}: ${p} is a tar ${type}, which a SIF cannot hold`);
        const entry = toEntry(h, kind);
        if (kind === 'directory' && INIT_TOUCHED.has(p)) entry.mtime = prep.buildDate;
        if (kind !== 'file') {
          body.resume();
          await once(pack, tarHeader(p, entry, opts.fixPerms));
          return;
        }
        if (!elf && entry.size >= 20 && BIN_DIR.test(p)) sniffHead(body, 20, (head) => (elf = elf ?? elfArch(head)));
        await pipeline(body, pack.entry(tarHeader(p, entry, opts.fixPerms)));
        bytes += entry.size;
      };
      const stream = await container.export();
      await pipeline(stream, extract, { signal: opts.signal });
      for (const a of prep.additions) {
        if (a.ifAbsent && seen.has(a.path)) continue;
        await once(pack, tarHeader(a.path, a.entry), a.content);
        files++;
      }
      return { files, bytes, elfArch: elf };
    });
  } finally {
    await container.remove().catch(() => undefined);
  }
}
