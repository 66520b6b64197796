/**
 * The MPI libraries a host binds in, against the image's own copies of
 * the same library, at the levels of Sarus's MPI hook: `major` (the same
 * SONAME major), `full` (the host's version at least the image's in every
 * part), `strict` (equal). Versions are read from the file names
 * (libmpi.so.40.30.5). An image without its own copy is held to its
 * needed SONAMEs only, which the linker check already does. Pure.
 */
import type { ImageFiles, ViewEntry } from './view';

export type MpiLevel = 'major' | 'full' | 'strict';

export const MPI_LEVELS: readonly MpiLevel[] = ['major', 'full', 'strict'];

export interface MpiFinding {
  library: string;
  host: { path: string; version: string };
  image: { path: string; version: string };
  level: MpiLevel;
  ok: boolean;
  why?: string;
}

/** `libmpi_cray.so.12.0.0` → base `libmpi_cray`, version [12, 0, 0]. */
export function soVersion(file: string): { base: string; version: number[] } | undefined {
  const m = /^(lib[^/]+?)\.so((?:\.\d+)*)$/.exec(file.slice(file.lastIndexOf('/') + 1));
  return m ? { base: m[1], version: m[2].split('.').filter(Boolean).map(Number) } : undefined;
}

/** MPI's own libraries (Open MPI, MPICH, Cray MPICH, its GTL), not the many that only use MPI. */
export function isMpiLibrary(base: string): boolean {
  return /^lib(mpi|mpich|mpi_cray|mpi_gtl_[a-z0-9]+|mpicxx|mpifort|mpichcxx|mpichfort|mpi_cxx|mpi_mpifh|mpi_usempif08)$/.test(
    base,
  );
}

function versionOf(path: string, e: ViewEntry): number[] | undefined {
  const byName = soVersion(path);
  const bySoname = e.elf?.soname ? soVersion(e.elf.soname) : undefined;
  // The file name carries the full version; a name without one falls back on the SONAME's.
  return byName && byName.version.length >= (bySoname?.version.length ?? 0) ? byName.version : bySoname?.version;
}

export function compareAt(level: MpiLevel, host: number[], image: number[]): string | undefined {
  if ((host[0] ?? 0) !== (image[0] ?? 0)) return `SONAME major ${host[0]} on the host, ${image[0]} in the image`;
  if (level === 'major') return undefined;
  const n = Math.max(host.length, image.length);
  for (let i = 0; i < n; i++) {
    const h = host[i] ?? 0;
    const m = image[i] ?? 0;
    if (level === 'full' && h < m) return `the host's ${host.join('.')} is older than the image's ${image.join('.')}`;
    if (level === 'strict' && h !== m) return `the host's ${host.join('.')} is not the image's ${image.join('.')}`;
  }
  return undefined;
}

export function mpiFindings(view: Map<string, ViewEntry>, image: ImageFiles, level: MpiLevel): MpiFinding[] {
  const own = new Map<string, Array<{ path: string; version: number[] }>>();
  for (const [p, e] of image.entries) {
    if (e.kind !== 'file' || !e.elf?.soname) continue;
    const s = soVersion(e.elf.soname);
    const v = versionOf(p, e);
    if (s && v && isMpiLibrary(s.base)) own.set(s.base, [...(own.get(s.base) ?? []), { path: p, version: v }]);
  }
  const out: MpiFinding[] = [];
  for (const [p, e] of view) {
    if (e.origin !== 'host' || e.kind !== 'file' || !e.elf) continue;
    // A host library is known by its SONAME, else by the name it is bound as (a library without a SONAME).
    const bySoname = e.elf.soname ? soVersion(e.elf.soname) : undefined;
    const byName = soVersion(p);
    const s = bySoname ?? byName;
    if (!s || !(isMpiLibrary(s.base) || (byName && isMpiLibrary(byName.base)))) continue;
    const v = versionOf(p, e);
    // The image's library it stands in for: the one of the name it is bound as (ld.so loads it by that
    // name, whatever its SONAME says), else the one of its SONAME.
    const as = byName && own.has(byName.base) ? byName.base : s.base;
    // What cannot be compared is not taken as compatible: another library or major under the image's
    // library's name, or no version anywhere.
    const unknown =
      bySoname &&
      byName &&
      as === byName.base &&
      (bySoname.base !== byName.base ||
        (byName.version.length > 0 && bySoname.version.length > 0 && bySoname.version[0] !== byName.version[0]))
        ? `bound as ${p.slice(p.lastIndexOf('/') + 1)}, but its SONAME is ${e.elf.soname}`
        : !v || v.length === 0
          ? `no version in its SONAME (${e.elf.soname ?? 'none'}) or its file name to compare`
          : undefined;
    for (const mine of own.get(as) ?? []) {
      const why = unknown ?? compareAt(level, v!, mine.version);
      out.push({
        library: as,
        host: { path: p, version: v?.length ? v.join('.') : 'unknown' },
        image: { path: mine.path, version: mine.version.join('.') },
        level,
        ok: !why,
        ...(why ? { why } : {}),
      });
    }
  }
  return out.sort((a, b) =>
    a.host.path === b.host.path ? (a.image.path < b.image.path ? -1 : 1) : a.host.path < b.host.path ? -1 : 1,
  );
}
