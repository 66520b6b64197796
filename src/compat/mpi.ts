/**
 * The MPI libraries a host binds in, against the image's own copies of
 * the same library, at the levels of Sarus's MPI hook: `major` (the same
 * SONAME major), `full` (the host's version at least the image's in every
 * part), `strict` (equal). Versions are read from the file names
 * (libmpi.so.40.30.5). An image without its own copy is held to its
 * needed SONAMEs only, which the linker check already does. Pure.
 */
import type { ImageFiles, ViewEntry } from './linker';

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
    if (e.origin !== 'host' || e.kind !== 'file' || !e.elf?.soname) continue;
    const s = soVersion(e.elf.soname);
    const v = versionOf(p, e);
    if (!s || !v || !isMpiLibrary(s.base)) continue;
    for (const mine of own.get(s.base) ?? []) {
      const why = compareAt(level, v, mine.version);
      out.push({
        library: s.base,
        host: { path: p, version: v.join('.') },
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
