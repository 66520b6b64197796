/**
 * What software an image holds, from the package managers' own records:
 * dpkg's status database, conda's conda-meta/*.json, Python's
 * *.dist-info/METADATA (and *.egg-info/PKG-INFO). Pure: file paths and
 * texts in, packages out. The rpm database (SLES) is a Berkeley DB or
 * SQLite file that only rpm itself reads: it is found and named, not read.
 */

export interface ImagePackage {
  type: 'deb' | 'conda' | 'pypi';
  name: string;
  version: string;
  /** deb: architecture; conda: build string. */
  arch?: string;
  build?: string;
  /** conda: the channel's name. */
  channel?: string;
  license?: string;
  /** The record it was read from, inside the image. */
  source: string;
}

/** The package records a path is, by its place in the image (paths start with /). */
export type RecordKind = 'dpkg' | 'conda' | 'python' | 'rpmdb';

const RPM_DB = /^\/(var\/lib\/rpm|usr\/lib\/sysimage\/rpm)\/(Packages|Packages\.db|rpmdb\.sqlite)$/;

export function recordKind(p: string): RecordKind | undefined {
  if (p === '/var/lib/dpkg/status') return 'dpkg';
  if (/\/conda-meta\/[^/]+\.json$/.test(p)) return 'conda';
  if (
    /\/(site|dist)-packages\/[^/]+\.dist-info\/METADATA$/.test(p) ||
    /\/(site|dist)-packages\/[^/]+\.egg-info\/PKG-INFO$/.test(p)
  )
    return 'python';
  if (RPM_DB.test(p)) return 'rpmdb';
  return undefined;
}

/** RFC 822-style fields (dpkg stanzas, Python METADATA headers); continuation lines folded in. */
function fields(stanza: string): Map<string, string> {
  const out = new Map<string, string>();
  let last: string | undefined;
  for (const line of stanza.split('\n')) {
    if (/^[ \t]/.test(line) && last) out.set(last, `${out.get(last)}\n${line.trim()}`);
    else {
      const m = /^([A-Za-z0-9-]+):[ \t]*(.*)$/.exec(line);
      if (!m) continue;
      last = m[1].toLowerCase();
      if (!out.has(last)) out.set(last, m[2].trim());
    }
  }
  return out;
}

/** Installed packages of a dpkg status file (Status "... installed"). */
export function parseDpkgStatus(text: string, source = '/var/lib/dpkg/status'): ImagePackage[] {
  const out: ImagePackage[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const f = fields(stanza);
    const name = f.get('package');
    const version = f.get('version');
    if (!name || !version || !/\binstalled$/.test(f.get('status') ?? '')) continue;
    out.push({ type: 'deb', name, version, arch: f.get('architecture'), source });
  }
  return out;
}

/** One conda-meta record; undefined when it is not one. */
export function parseCondaMeta(text: string, source: string): ImagePackage | undefined {
  let doc: { name?: unknown; version?: unknown; build?: unknown; channel?: unknown; license?: unknown };
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc?.name !== 'string' || typeof doc.version !== 'string') return undefined;
  const channel = typeof doc.channel === 'string' ? doc.channel.replace(/\/+$/, '').split('/').pop() : undefined;
  return {
    type: 'conda',
    name: doc.name,
    version: doc.version,
    build: typeof doc.build === 'string' ? doc.build : undefined,
    channel: channel || undefined,
    license: typeof doc.license === 'string' && doc.license ? doc.license : undefined,
    source,
  };
}

/** One Python distribution's METADATA / PKG-INFO headers; undefined when it names none. */
export function parsePythonMetadata(text: string, source: string): ImagePackage | undefined {
  const head = text.split(/\n\n/, 1)[0];
  const f = fields(head);
  const name = f.get('name');
  const version = f.get('version');
  if (!name || !version) return undefined;
  const license = f.get('license-expression') ?? f.get('license');
  return {
    type: 'pypi',
    name,
    version,
    license: license && license.length < 200 && !license.includes('\n') ? license : undefined,
    source,
  };
}

/** Packages of every record, in a stable order. */
export function packagesOf(records: Array<{ path: string; text: string }>): ImagePackage[] {
  const out: ImagePackage[] = [];
  for (const r of records) {
    const kind = recordKind(r.path);
    if (kind === 'dpkg') out.push(...parseDpkgStatus(r.text, r.path));
    else if (kind === 'conda')
      out.push(...[parseCondaMeta(r.text, r.path)].filter((p): p is ImagePackage => p !== undefined));
    else if (kind === 'python')
      out.push(...[parsePythonMetadata(r.text, r.path)].filter((p): p is ImagePackage => p !== undefined));
  }
  return out.sort((a, b) => (a.type + a.name + a.version + a.source < b.type + b.name + b.version + b.source ? -1 : 1));
}
