/**
 * The dynamic linker's work on a container's view (view.ts: the image's
 * files with the host's binds laid over them), computed: from every ELF
 * object of the image,
 * its dependencies searched as glibc's ld.so searches them (DT_RPATH of
 * the object and of each object that loaded it, up to the executable, when
 * the object has no DT_RUNPATH (and each of them none either),
 * LD_LIBRARY_PATH, DT_RUNPATH, the ld.so.cache directories, the default
 * directories, each after its glibc-hwcaps (and, before glibc 2.37,
 * legacy hwcaps) subdirectories for the host's CPU; $ORIGIN and $LIB expanded; a candidate of another ELF
 * class or machine skipped), and every symbol version it requires looked
 * up in the library that provides it. Pure.
 */
import type { ElfInfo } from '../elf/format';
import { cacheFlagsFor, cacheLookup, type LdCacheEntry } from '../elf/ldcache';
import { ldconfDirs, parentOf, resolvePath, type Origin, type ViewEntry } from './view';

export interface Break {
  kind: 'missing-library' | 'missing-version';
  /** The object that needs it, and where it comes from. */
  file: string;
  fileFrom: Origin;
  library: string;
  /** Where the library was found (missing-version). */
  provider?: string;
  providerFrom?: Origin;
  version?: string;
  /** One program or library of the image whose loading hits it, and how many do. */
  neededBy: string;
  roots: number;
  /** The same break without the host's binds: the image is broken on its own there. */
  alsoWithoutHost?: boolean;
}

export interface Resolution {
  breaks: Break[];
  /** Objects checked (image ELF files visible through the binds). */
  roots: number;
  /** Host files loaded by something in the image, by container path. */
  hostLoaded: string[];
  /** Which library each needed name of a host or image object resolved to: `${object}\0${name}` → path. */
  resolved: Map<string, string>;
  /** Objects whose dependencies all resolved but whose provider has no version table (ld.so only warns). */
  unversioned: string[];
}

/** ld.so's built-in directories: the multiarch ones (Debian's glibc) and the lib64 ones (most others). */
function defaultDirs(elf: ElfInfo): string[] {
  const triplet =
    elf.machine === 62
      ? 'x86_64-linux-gnu'
      : elf.machine === 183
        ? 'aarch64-linux-gnu'
        : elf.machine === 3
          ? 'i386-linux-gnu'
          : undefined;
  const lib64 = elf.bits === 64 ? ['/lib64', '/usr/lib64'] : [];
  return [...(triplet ? [`/lib/${triplet}`, `/usr/lib/${triplet}`] : []), ...lib64, '/lib', '/usr/lib'];
}

function expand(dir: string, origin: string, elf: ElfInfo): string {
  const lib = elf.machine === 62 ? 'lib/x86_64-linux-gnu' : elf.bits === 64 ? 'lib64' : 'lib';
  return dir
    .replace(/\$(\{ORIGIN\}|ORIGIN)/g, origin)
    .replace(/\$(\{LIB\}|LIB)/g, lib)
    .replace(/\$(\{PLATFORM\}|PLATFORM)/g, 'x86_64');
}

/** Where a search ended: the library's path as found, or the file ld.so stopped at, unable to load it. */
interface Found {
  path?: string;
  stop?: string;
  stopFrom?: Origin;
}

/** An object that loaded another, as it was loaded (its path gives $ORIGIN). */
interface Loader {
  path: string;
  elf: ElfInfo;
}

export interface ResolveOptions {
  ldLibraryPath: string[];
  /** The image's ld.so.cache; without one, the directories of its ld.so.conf stand in for it. */
  cache?: LdCacheEntry[];
  /** glibc-hwcaps (then legacy hwcaps) subdirectories searched before each directory, best first (hwcaps.ts); default none. */
  hwcaps?: string[];
  /** The same subdirectories in the order ld.so.cache entries of them are preferred (default: `hwcaps`). */
  cacheHwcaps?: string[];
  /** Objects to start from; default every image ELF object in the view. */
  roots?: string[];
}

/** Follows every image object's dependencies through the view; the breaks found. */
export function resolveAll(
  view: Map<string, ViewEntry>,
  ldconf: Map<string, string>,
  opts: ResolveOptions,
): Resolution {
  const cacheDirs = opts.cache ? [] : ldconfDirs(ldconf);
  const hwcaps = opts.hwcaps ?? [];
  const inCache = opts.cache ? cacheLookup(opts.cache, opts.cacheHwcaps ?? hwcaps) : undefined;
  const real = new Map<string, string | undefined>();
  const realOf = (p: string): string | undefined => {
    if (!real.has(p)) real.set(p, resolvePath(view, p));
    return real.get(p);
  };
  const elfAt = (p: string): { path: string; entry: ViewEntry } | undefined => {
    const r = realOf(p);
    const e = r ? view.get(r) : undefined;
    return e?.kind === 'file' && e.elf ? { path: r!, entry: e } : undefined;
  };
  const found = new Map<string, Found>();
  /**
   * The library `name` needed by `obj` (loaded as `objPath`); `loaders` is the chain that loaded it,
   * nearest first, ending at the executable. As ld.so (dl-load.c _dl_map_object): when `obj` has no
   * DT_RUNPATH, the DT_RPATH of `obj`, then of its loader, and on up to the executable, each only when
   * that object has no DT_RUNPATH itself (get-dynamic-info.h: RUNPATH makes RPATH ignored).
   */
  const find = (objPath: string, obj: ElfInfo, name: string, loaders: Loader[]): Found => {
    const rpathOf =
      obj.runpath.length === 0
        ? [{ path: objPath, elf: obj }, ...loaders].filter((l) => l.elf.runpath.length === 0 && l.elf.rpath.length)
        : [];
    const key = [objPath, name, ...rpathOf.map((l) => l.path)].join('\0');
    const hit = found.get(key);
    if (hit !== undefined) return hit;
    let result: Found | undefined;
    /**
     * ld.so's answer for one candidate path (dl-load.c open_verify): nothing there, or an ELF object of
     * another class or machine, and it goes on; a file it cannot load (not ELF, cut short) stops the
     * search with an error ("file too short", "invalid ELF header"): a later good copy is never reached.
     */
    const fits = (p: string): Found | undefined => {
      const f = elfAt(p);
      if (f) {
        const e = f.entry.elf!;
        if (e.bits !== obj.bits || e.machine !== obj.machine) return undefined;
        // Of the right class and machine, only a shared object loads: an object file or a core dump ("only
        // ET_DYN and ET_EXEC can be loaded", open_verify) and an executable ("cannot dynamically load
        // executable", _dl_map_object_from_fd) end the search with an error, as a wrong file does.
        return e.type === 'dyn' ? { path: p } : { stop: f.path, stopFrom: f.entry.origin };
      }
      const r = realOf(p);
      const e = r ? view.get(r) : undefined;
      return e?.kind === 'file' ? { stop: r!, stopFrom: e.origin } : undefined;
    };
    if (name.includes('/')) result = fits(name.startsWith('/') ? name : `/${name}`);
    else {
      const dirs = [
        ...rpathOf.flatMap((l) => l.elf.rpath.map((d) => expand(d, parentOf(l.path), l.elf))),
        ...opts.ldLibraryPath,
        ...obj.runpath.map((d) => expand(d, parentOf(objPath), obj)),
        ...cacheDirs,
      ];
      const search = (list: string[]) => {
        for (const d of list) {
          if (!d.startsWith('/')) continue;
          const dir = d.replace(/\/+$/, '');
          for (const sub of hwcaps) {
            result = fits(`${dir}/${sub}/${name}`);
            if (result) return;
          }
          result = fits(`${dir}/${name}`);
          if (result) return;
        }
      };
      search(dirs);
      // The cache names a file; one a bind hid (or of another class) is passed over, as ld.so does.
      const flags = cacheFlagsFor(obj);
      const cached = !result && inCache && flags !== undefined ? inCache(name, flags) : undefined;
      if (cached) result = fits(cached);
      if (!result) search(defaultDirs(obj));
    }
    found.set(key, result ?? {});
    return result ?? {};
  };

  const breaks = new Map<string, Break>();
  const hostLoaded = new Set<string>();
  const unversioned = new Set<string>();
  const resolved = new Map<string, string>();
  const note = (b: Omit<Break, 'roots' | 'neededBy'>, root: string) => {
    const key = [b.kind, b.file, b.library, b.version ?? ''].join('\0');
    const had = breaks.get(key);
    if (had) had.roots++;
    else breaks.set(key, { ...b, neededBy: root, roots: 1 });
  };
  const roots =
    opts.roots ??
    [...view.entries()]
      .filter(
        ([, e]) =>
          e.kind === 'file' &&
          e.origin === 'image' &&
          e.elf &&
          (e.elf.type === 'dyn' || e.elf.type === 'exec') &&
          e.elf.needed.length,
      )
      .map(([p]) => p)
      .sort();
  // An object's version checks depend only on the providers it got: done once per set of providers.
  const versionBreaks = new Map<string, Array<Omit<Break, 'roots' | 'neededBy'>>>();
  // ld.so starts from a program: a library is loaded by one, and searched with the DT_RPATH of each object
  // that loaded it. So the programs go first, and a library one of them loads is checked only as loaded
  // there; on its own (a private library relying on its program's RPATH) it would break where it never runs.
  // A library no program of the image loads (a plugin, a Python module) is still checked on its own.
  const isProgram = (p: string) => {
    const e = elfAt(p)?.entry.elf;
    return e !== undefined && (e.type === 'exec' || e.interp !== undefined);
  };
  const ordered = [...roots.filter(isProgram), ...roots.filter((r) => !isProgram(r))];
  const reached = new Set<string>();
  let checked = 0;
  for (const root of ordered) {
    const exe = elfAt(root);
    if (!exe) continue;
    if (!isProgram(root) && reached.has(exe.path)) continue;
    checked++;
    const queue: Array<{ loadedAs: string; real: string; entry: ViewEntry; loaders: Loader[] }> = [
      { loadedAs: root, real: exe.path, entry: exe.entry, loaders: [] },
    ];
    const seen = new Set<string>([exe.path]);
    // Every object of the process with its direct providers, and the names each answers to: ld.so checks
    // versions once all are loaded, and takes a version's file from any loaded object of that name.
    const objects: Array<{
      real: string;
      entry: ViewEntry;
      providers: Map<string, { path: string; entry: ViewEntry }>;
    }> = [];
    const byName = new Map<string, { path: string; entry: ViewEntry }>();
    if (exe.entry.elf!.soname) byName.set(exe.entry.elf!.soname, exe);
    while (queue.length) {
      const o = queue.shift()!;
      const elf = o.entry.elf!;
      if (o.entry.origin === 'host') hostLoaded.add(o.real);
      const providers = new Map<string, { path: string; entry: ViewEntry }>();
      for (const n of elf.needed) {
        // A name an object already loaded answers to (a name it was needed as, or its SONAME) is that
        // object, with no search (dl-load.c _dl_map_object): a file whose SONAME differs from its name
        // serves both names.
        const loaded = n.includes('/') ? undefined : byName.get(n);
        const { path: p, stop, stopFrom } = loaded ? {} : find(o.loadedAs, elf, n, o.loaders);
        if (!loaded && !p) {
          // Where ld.so stopped at a file it cannot load, that file is named as the provider.
          const at = stop ? { provider: stop, providerFrom: stopFrom } : {};
          note({ kind: 'missing-library', file: o.real, fileFrom: o.entry.origin, library: n, ...at }, root);
          continue;
        }
        const f = loaded ?? elfAt(p!)!;
        resolved.set(`${o.real}\0${n}`, f.path);
        providers.set(n, f);
        if (!byName.has(n)) byName.set(n, f);
        if (p && !seen.has(f.path)) {
          seen.add(f.path);
          const soname = f.entry.elf!.soname;
          if (soname && !byName.has(soname)) byName.set(soname, f);
          queue.push({ loadedAs: p, real: f.path, entry: f.entry, loaders: [{ path: o.loadedAs, elf }, ...o.loaders] });
        }
      }
      objects.push({ real: o.real, entry: o.entry, providers });
    }
    for (const p of seen) reached.add(p);
    for (const o of objects) {
      const elf = o.entry.elf!;
      // A version's file that is not a direct dependency is looked up among everything loaded (dl-version.c find_needed).
      const providerOf = (file: string) => o.providers.get(file) ?? byName.get(file);
      const vkey = `${o.real}\0${elf.requires.map((r) => providerOf(r.file)?.path ?? `?${r.file}`).join('\0')}`;
      const known = versionBreaks.get(vkey);
      if (known) {
        for (const b of known) note(b, root);
        continue;
      }
      const mine: Array<Omit<Break, 'roots' | 'neededBy'>> = [];
      versionBreaks.set(vkey, mine);
      for (const need of elf.requires) {
        const prov = providerOf(need.file);
        if (!prov) {
          // Needed and not found: already a missing library. Not needed and loaded by nothing: ld.so stops
          // (dl-version.c asserts the file is loaded), so it is missing too.
          if (!elf.needed.includes(need.file))
            mine.push({ kind: 'missing-library', file: o.real, fileFrom: o.entry.origin, library: need.file });
          continue;
        }
        const defs = prov.entry.elf!.defines;
        if (!defs.length) {
          unversioned.add(`${o.real} -> ${prov.path}`);
          continue;
        }
        for (const v of need.versions) {
          if (!defs.includes(v))
            mine.push({
              kind: 'missing-version',
              file: o.real,
              fileFrom: o.entry.origin,
              library: need.file,
              provider: prov.path,
              providerFrom: prov.entry.origin,
              version: v,
            });
        }
      }
      for (const b of mine) note(b, root);
    }
  }
  return {
    breaks: [...breaks.values()],
    roots: checked,
    hostLoaded: [...hostLoaded].sort(),
    resolved,
    unversioned: [...unversioned].sort(),
  };
}
