/**
 * One image against one host snapshot: the linker's view with the binds
 * laid over the image, every break found, each marked when the image is
 * broken there on its own too, and the MPI libraries compared at Sarus's
 * levels. Pure.
 */
import type { HostSnapshot } from '../validate/schemas/host';
import { hwcapsSubdirs, legacyHwcapsSubdirs } from './hwcaps';
import { resolveAll, type Break } from './linker';
import { overlay, type ImageFiles } from './view';
import { mpiFindings, type MpiFinding, type MpiLevel } from './mpi';
import { glibcVersion } from './versions';

export interface CompatReport {
  image: string;
  host: { host: string; takenAt: string; glibc: string | null };
  /** The newest GLIBC_ symbol version of the image's libc.so.6 (a release that adds none, as 2.31, shows the one before). */
  glibc: string | null;
  compatible: boolean;
  mpiLevel: MpiLevel;
  /** Image ELF objects whose loading was followed. */
  objects: number;
  /** Host libraries something in the image loads. */
  hostLoaded: string[];
  breaks: Break[];
  mpi: MpiFinding[];
  ldLibraryPath: string[];
}

/** apptainer appends this to every container's LD_LIBRARY_PATH. */
const SINGULARITY_LIBS = '/.singularity.d/libs';

function splitPath(s: string | undefined): string[] {
  return (s ?? '').split(':').filter((d) => d.startsWith('/'));
}

/** The libc.so.6 the image's default directories hold: its version. */
export function imageGlibc(files: ImageFiles): string | null {
  const libcs = [...files.entries]
    .filter(([, e]) => e.kind === 'file' && e.elf?.soname === 'libc.so.6')
    .sort(([a], [b]) => a.length - b.length);
  return libcs.length ? (glibcVersion(libcs[0][1].elf!.defines) ?? null) : null;
}

/**
 * The subdirectories the image's ld.so (glibc `glibc`) tries in each
 * directory on this host, in its order: the glibc-hwcaps ones, then the
 * legacy ones; and the order it prefers ld.so.cache entries of them in.
 */
export function hwcapsOf(
  host: Pick<HostSnapshot, 'arch' | 'x86Level' | 'cpuVendor'>,
  glibc: string | null,
): { hwcaps: string[]; cacheHwcaps: string[] } {
  const modern = hwcapsSubdirs(host.x86Level, glibc);
  const legacy =
    host.arch === 'x86_64'
      ? legacyHwcapsSubdirs({ level: host.x86Level, vendor: host.cpuVendor }, glibc)
      : { search: [], cache: [] };
  return { hwcaps: [...modern, ...legacy.search], cacheHwcaps: [...modern, ...legacy.cache] };
}

export function checkImage(
  name: string,
  files: ImageFiles,
  host: HostSnapshot,
  opts: { mpiLevel?: MpiLevel } = {},
): CompatReport {
  const mpiLevel = opts.mpiLevel ?? 'major';
  // A module's SINGULARITYENV_LD_LIBRARY_PATH replaces the image's value in the container.
  const ldLibraryPath = [
    ...(host.ldLibraryPath.length ? host.ldLibraryPath : splitPath(files.env.LD_LIBRARY_PATH)),
    SINGULARITY_LIBS,
  ];
  const view = overlay(files, host);
  const glibc = imageGlibc(files);
  const hwcaps = hwcapsOf(host, glibc);
  const withHost = resolveAll(view, files.ldconf, { ldLibraryPath, cache: files.ldCache, ...hwcaps });
  const alone = resolveAll(files.entries, files.ldconf, {
    cache: files.ldCache,
    ...hwcaps,
    ldLibraryPath: [...splitPath(files.env.LD_LIBRARY_PATH), SINGULARITY_LIBS],
  });
  const key = (b: Break) => [b.kind, b.file, b.library, b.version ?? ''].join('\0');
  const before = new Set(alone.breaks.map(key));
  const breaks = withHost.breaks
    .map((b) => ({ ...b, alsoWithoutHost: before.has(key(b)) }))
    .sort((a, b) => (a.file === b.file ? (a.library < b.library ? -1 : 1) : a.file < b.file ? -1 : 1));
  const mpi = mpiFindings(view, files, mpiLevel);
  return {
    image: name,
    host: { host: host.host, takenAt: host.takenAt, glibc: host.glibc?.version ?? null },
    glibc,
    compatible: breaks.length === 0 && mpi.every((m) => m.ok),
    mpiLevel,
    objects: withHost.roots,
    hostLoaded: withHost.hostLoaded,
    breaks,
    mpi,
    ldLibraryPath,
  };
}
