/**
 * What `sifkit status` shows, as pure functions over the tree status: the
 * `--stem` / `--where name=value` filter, and the table with one column per
 * recipe parameter, named as the recipe names it.
 */
import { humanAge, humanSize, type Column } from './output';
import { type ImageStatus, InputError, type TreeStatus } from '../index';

export interface StatusFilter {
  stem?: string;
  where: Array<{ name: string; value: string }>;
}

/** Parses `--where` flags: `name=value`, the name as the recipe names the parameter. */
export function parseWhere(flags: string[] = []): StatusFilter['where'] {
  return flags.map((f) => {
    const m = /^([A-Za-z_][A-Za-z0-9_-]*)=(.*)$/.exec(f);
    if (!m)
      throw new InputError(
        'bad-where',
        `--where ${JSON.stringify(f)} is not name=value (for example --where rocm=6.2.0)`,
      );
    return { name: m[1], value: m[2] };
  });
}

/** `*` matches any run of characters; anything else matches itself. */
function stemMatcher(pattern: string): (stem: string) => boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return (s) => re.test(s);
}

/** Keeps the images (and the links to them) that match every filter. */
export function filterStatus(s: TreeStatus, f: StatusFilter): TreeStatus {
  const known = new Set(s.images.flatMap((i) => Object.keys(i.params)));
  const unknown = f.where.find((w) => !known.has(w.name));
  if (unknown && s.images.length) {
    throw new InputError(
      'unknown-parameter',
      `no image in the tree has a parameter ${unknown.name} (they have: ${[...known].sort().join(', ') || 'none'})`,
    );
  }
  const stemOk = f.stem === undefined ? () => true : stemMatcher(f.stem);
  const images = s.images.filter((i) => stemOk(i.stem) && f.where.every((w) => i.params[w.name] === w.value));
  if (f.stem === undefined && !f.where.length) return s;
  const kept = new Set(images.map((i) => i.name));
  const links = s.links.filter(
    (l) => (l.image !== undefined && kept.has(l.image)) || (l.dangling && !f.where.length && stemOk(l.name)),
  );
  return { ...s, images, links };
}

const DIR_WORD: Record<string, string> = { 'tested-containers': 'tested', 'easybuild-sif-images': 'easybuild' };
const TEST_COLOUR = (t: string) =>
  (t === 'passed' ? 'green' : t === 'failed' || t === 'refused' ? 'red' : undefined) as 'green' | 'red' | undefined;
const CHECKSUM_COLOUR = (c: string) =>
  (c === 'changed' ? 'red' : c === 'unrecorded' ? 'yellow' : undefined) as 'red' | 'yellow' | undefined;

/**
 * The parameter names across the images, in the order they first appear,
 * split into those whose value differs between images (a column each) and
 * those every image shares (one `name=value` line: a column repeating one
 * value says nothing and costs width).
 */
export function parameterNames(images: ImageStatus[]): { varying: string[]; shared: Array<[string, string]> } {
  const names = [...new Set(images.flatMap((i) => Object.keys(i.params)))];
  const varying: string[] = [];
  const shared: Array<[string, string]> = [];
  for (const n of names) {
    const values = new Set(images.map((i) => i.params[n]));
    if (values.size === 1 && images.length && images[0].params[n] !== undefined) shared.push([n, images[0].params[n]]);
    else varying.push(n);
  }
  return { varying, shared };
}

/** The status table (rows grouped under their stem) and the shared parameters. */
export function statusTable(images: ImageStatus[]): { columns: Column[]; rows: string[][]; shared: string[] } {
  const { varying, shared } = parameterNames(images);
  const columns: Column[] = [
    { header: 'stem', group: true },
    { header: 'dockerhash' },
    ...varying.map((p) => ({ header: p })),
    { header: 'in' },
    { header: 'linked' },
    { header: 'size', align: 'right' },
    { header: 'age', align: 'right' },
    { header: 'checksum', color: CHECKSUM_COLOUR },
    { header: 'test', color: TEST_COLOUR },
  ];
  // By stem, then newest first within a stem (what was just built is what one looks for), then dockerhash.
  const sorted = [...images].sort((a, b) =>
    a.stem !== b.stem
      ? a.stem < b.stem
        ? -1
        : 1
      : (a.ageDays ?? Infinity) !== (b.ageDays ?? Infinity)
        ? (a.ageDays ?? Infinity) - (b.ageDays ?? Infinity)
        : a.dockerhash < b.dockerhash
          ? -1
          : a.dockerhash > b.dockerhash
            ? 1
            : 0,
  );
  const rows = sorted.map((i) => [
    i.stem || '?',
    i.dockerhash || '?',
    ...varying.map((p) => i.params[p] ?? '-'),
    i.dirs.map((d) => DIR_WORD[d] ?? d).join('+'),
    // LUMI names the link after the stem: say "yes" then, the name otherwise.
    i.links.length
      ? i.links
          .map((l) => l.replace(/^sif-images\//, ''))
          .map((l) => (l === i.stem || l === `${i.stem}.sif` ? 'yes' : l))
          .join(',')
      : '-',
    humanSize(i.size),
    humanAge(i.ageDays),
    i.checksum,
    i.test ?? '-',
  ]);
  return { columns, rows, shared: shared.map(([n, v]) => `${n}=${v}`) };
}
