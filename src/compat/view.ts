/**
 * The container as the dynamic linker sees it: the image's files with the
 * host's bound files laid over them (a bind hides everything of the image
 * under its target), paths resolved through links as the kernel resolves
 * them, and the directories ld.so.conf names. Pure.
 */
import type { ElfInfo } from '../elf/format';
import type { LdCacheEntry } from '../elf/ldcache';
import type { HostSnapshot } from '../validate/schemas/host';

export type Origin = 'image' | 'host';

export interface ViewEntry {
  kind: 'file' | 'link' | 'dir';
  link?: string;
  elf?: ElfInfo;
  origin: Origin;
}

/** The image's files as a listing gives them (ELF facts for the ELF ones). */
export interface ImageFiles {
  entries: Map<string, ViewEntry>;
  /** Text of /etc/ld.so.conf and the files it includes, by path. */
  ldconf: Map<string, string>;
  /** The image's /etc/ld.so.cache, when it has a readable one: searched instead of ld.so.conf's directories. */
  ldCache?: LdCacheEntry[];
  /** The image's environment: LD_LIBRARY_PATH among it. */
  env: Record<string, string>;
}

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** The image's files with the snapshot's binds laid over them. */
export function overlay(image: ImageFiles, host: HostSnapshot | undefined): Map<string, ViewEntry> {
  if (!host) return image.entries;
  const targets = host.binds.map((b) => b.target);
  const view = new Map<string, ViewEntry>();
  for (const [p, e] of image.entries) if (!targets.some((t) => under(p, t))) view.set(p, e);
  const dir = (p: string) => {
    for (let d = p; d !== '/' && !view.has(d); d = parentOf(d)) view.set(d, { kind: 'dir', origin: 'host' });
  };
  for (const b of host.binds) {
    if (b.kind === 'directory') dir(b.target);
    else dir(parentOf(b.target));
    for (const f of b.files) {
      dir(parentOf(f.path));
      view.set(
        f.path,
        f.link !== undefined
          ? { kind: 'link', link: f.link, origin: 'host' }
          : { kind: 'file', elf: f.elf, origin: 'host' },
      );
    }
  }
  return view;
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

/** Where a path leads in the view, following links in every component (as the kernel does); undefined if nowhere. */
export function resolvePath(view: Map<string, ViewEntry>, p: string): string | undefined {
  let todo = p.split('/').filter(Boolean);
  let out: string[] = [];
  let hops = 0;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      out.pop();
      continue;
    }
    const cur = `/${[...out, c].join('/')}`;
    const e = view.get(cur);
    if (!e) return undefined;
    if (e.kind === 'link') {
      if (++hops > 40) return undefined;
      const t = e.link!;
      if (t.startsWith('/')) out = [];
      todo = [...t.split('/').filter(Boolean), ...todo];
      continue;
    }
    if (e.kind === 'file' && todo.length) return undefined;
    out.push(c);
  }
  return `/${out.join('/')}`;
}

/** The directories of /etc/ld.so.conf (with its `include` globs), as ldconfig reads them. */
export function ldconfDirs(ldconf: Map<string, string>): string[] {
  const dirs: string[] = [];
  const seen = new Set<string>();
  const read = (file: string, depth: number) => {
    if (depth > 8 || seen.has(file)) return;
    seen.add(file);
    for (const raw of (ldconf.get(file) ?? '').split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const inc = /^include\s+(.+)$/.exec(line);
      if (inc) {
        for (const pat of inc[1].split(/\s+/)) {
          const abs = pat.startsWith('/') ? pat : `${parentOf(file)}/${pat}`;
          const re = new RegExp(
            `^${abs
              .split('*')
              .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
              .join('[^/]*')}$`,
          );
          for (const f of [...ldconf.keys()].filter((k) => re.test(k)).sort()) read(f, depth + 1);
        }
      } else if (line.startsWith('/')) dirs.push(line.replace(/\/+$/, '') || '/');
    }
  };
  read('/etc/ld.so.conf', 0);
  return dirs;
}
