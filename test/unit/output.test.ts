import fc from 'fast-check';
import { cutMiddle, humanAge, humanDuration, humanSize, outputStyle, table, wrapWords } from '../../src/cli/output';
import { filterStatus, parseWhere, statusTable } from '../../src/cli/status-view';
import type { ImageStatus, TreeStatus } from '../../src/tree/status';

const plain = { width: 100, color: false };
const SEED = Number(process.env.SIFKIT_SEED ?? Date.now() % 2 ** 31);

describe('table', () => {
  it('labels every column and aligns numbers right', () => {
    const out = table(
      [
        ['a', '5 B'],
        ['bbb', '10.0 KiB'],
      ],
      ['name', { header: 'size', align: 'right' }],
      plain,
    );
    expect(out).toBe('name      size\na          5 B\nbbb   10.0 KiB\n');
  });
  it('shows control characters of any cell as escapes: no cell moves the cursor or recolours the table', () => {
    const out = table([['a\x1b[2Jb', 'c\u202ed\x9b']], ['x', 'y'], plain);
    expect(out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/);
    expect(out).toContain('a\\x1b[2Jb');
    expect(out).toContain('c\\u{202e}d\\x9b');
    // A cell escaped before (a backslash doubled) stays as it was.
    expect(table([['p\\\\q']], ['x'], plain)).toContain('p\\\\q');
  });
  it('cuts shrinkable columns in the middle to fit the width, keeping both ends', () => {
    const long = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
    const out = table([[long, 'x'.repeat(40)]], [{ header: 'stem', shrink: true }, 'other'], {
      width: 60,
      color: false,
    });
    for (const l of out.trimEnd().split('\n')) expect(l.length).toBeLessThanOrEqual(60);
    expect(out).toContain('lumi-mpi4…py-3.1.6');
  });
  it('fits any content into the width when the shrinkable columns allow it (property)', () => {
    const cell = fc.string({ maxLength: 80 });
    fc.assert(
      fc.property(fc.array(fc.tuple(cell, fc.string({ maxLength: 10 }), cell), { maxLength: 8 }), (rows) => {
        const out = table(
          rows.map((r) => [...r]),
          [{ header: 'a', shrink: true }, 'b', { header: 'c', shrink: true }],
          plain,
        );
        for (const l of out.trimEnd().split('\n')) expect(l.length).toBeLessThanOrEqual(100);
        expect(out.split('\n')).toHaveLength(rows.length + 2);
      }),
      { seed: SEED, numRuns: 300, verbose: true },
    );
  });
  it('prints a group column as a heading over the rows sharing it', () => {
    const out = table(
      [
        ['g1', 'a'],
        ['g1', 'b'],
        ['g2', 'c'],
      ],
      [{ header: 'key', group: true }, 'v'],
      plain,
    );
    expect(out).toBe('key\n  v\ng1\n  a\n  b\ng2\n  c\n');
  });
  it('wraps name=value words to the width', () => {
    expect(wrapWords(['parameters:', 'a=1', 'b=2', 'c=3'], 16)).toBe('parameters: a=1\n  b=2 c=3\n');
  });
  it('never puts a newline of a cell into the output', () => {
    expect(table([['a\nb']], ['x'], plain)).toBe('x\na b\n');
  });
  it('colours only when told to; the header bold, cells by their colour function', () => {
    const cols = ['x', { header: 'state', color: (c: string) => (c === 'bad' ? ('red' as const) : undefined) }];
    expect(table([['1', 'bad']], cols, plain)).not.toContain('\u001b[');
    const coloured = table([['1', 'bad']], cols, { width: 100, color: true });
    expect(coloured).toContain('\u001b[1mx\u001b[0m');
    expect(coloured).toContain('\u001b[31mbad\u001b[0m');
  });
});

describe('outputStyle', () => {
  it('colours a terminal, not a pipe, not with NO_COLOR, not for TERM=dumb', () => {
    expect(outputStyle({ isTTY: true, columns: 80 }, {}).color).toBe(true);
    expect(outputStyle({ isTTY: false }, {}).color).toBe(false);
    expect(outputStyle({ isTTY: true }, { NO_COLOR: '1' }).color).toBe(false);
    expect(outputStyle({ isTTY: true }, { TERM: 'dumb' }).color).toBe(false);
  });
  it('uses 100 columns, or a wider terminal', () => {
    expect(outputStyle({ isTTY: false, columns: 300 }, {}).width).toBe(100);
    expect(outputStyle({ isTTY: true, columns: 80 }, {}).width).toBe(100);
    expect(outputStyle({ isTTY: true, columns: 180 }, {}).width).toBe(180);
  });
});

describe('human units', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [182_536_192, '174.1 MiB'],
    [5 * 2 ** 30, '5.0 GiB'],
  ])('size %d is %s', (n, s) => expect(humanSize(n)).toBe(s));
  it.each([
    [400, '0.4 s'],
    [59_940, '59.9 s'],
    [245_000, '4 min 05 s'],
    [7_380_000, '2 h 03 min'],
  ])('duration %d ms is %s', (n, s) => expect(humanDuration(n)).toBe(s));
  it.each([
    [undefined, '?'],
    [0, '< 1 h'],
    [0.5, '12 h'],
    [12.7, '12 d'],
    [912, '2.5 y'],
  ])('age %p days is %s', (n, s) => expect(humanAge(n)).toBe(s));
  it('cutMiddle keeps the length it is given', () => {
    expect(cutMiddle('abcdefghij', 5)).toBe('ab…ij');
    expect(cutMiddle('abc', 5)).toBe('abc');
  });
});

function image(stem: string, params: Record<string, string>, extra: Partial<ImageStatus> = {}): ImageStatus {
  return {
    name: `${stem}-dockerhash-aaaaaaaaaaaa.sif`,
    stem,
    dockerhash: 'aaaaaaaaaaaa',
    params,
    dirs: ['tested-containers', 'easybuild-sif-images'],
    links: [`sif-images/${stem}`],
    size: 182_536_192,
    ageDays: 3.2,
    checksum: 'ok-cached',
    ...extra,
  };
}

describe('status view', () => {
  const a = image('lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6', {
    rocm: '6.2.0',
    python: '3.12',
    mpi4py: '3.1.6',
  });
  const b = image(
    'lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4',
    { rocm: '5.4.5', python: '3.10', mpi4py: '3.1.4' },
    { links: [], checksum: 'changed' },
  );
  const c = image('lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py', { python: '3.11', mpi4py: '3.1.4' });
  const s: TreeStatus = {
    root: '/t',
    images: [a, b, c],
    links: [
      { name: a.stem, target: `../tested-containers/${a.name}`, image: a.name, dangling: false },
      { name: c.stem, target: `../tested-containers/${c.name}`, image: c.name, dangling: false },
      { name: 'lumi-old', target: '../tested-containers/gone.sif', image: 'gone.sif', dangling: true },
    ],
  };
  it('has one column per parameter that differs, named as the recipe names it, rows under their stem', () => {
    const t = statusTable(s.images);
    expect(t.columns.map((col) => col.header)).toEqual([
      'stem',
      'dockerhash',
      'rocm',
      'python',
      'mpi4py',
      'in',
      'linked',
      'size',
      'age',
      'checksum',
      'test',
    ]);
    expect(t.rows.map((r) => r[0])).toEqual([c.stem, b.stem, a.stem]);
    expect(t.rows[2]).toEqual([
      a.stem,
      'aaaaaaaaaaaa',
      '6.2.0',
      '3.12',
      '3.1.6',
      'tested+easybuild',
      'yes',
      '174.1 MiB',
      '3 d',
      'ok-cached',
      '-',
    ]);
    expect(t.rows[0][2]).toBe('-');
    expect(t.shared).toEqual([]);
    const out = table(t.rows, t.columns, plain);
    for (const l of out.trimEnd().split('\n')) expect(l.length).toBeLessThanOrEqual(100);
    expect(out.split('\n').slice(0, 4)).toEqual([
      'stem',
      '  dockerhash    rocm   python  mpi4py  in                linked       size  age  checksum   test',
      c.stem,
      '  aaaaaaaaaaaa  -      3.11    3.1.4   tested+easybuild  yes     174.1 MiB  3 d  ok-cached  -',
    ]);
  });
  it('sorts by stem, then newest first within a stem', () => {
    const old = { ...a, name: 'old.sif', dockerhash: 'cccccccccccc', ageDays: 40 };
    const fresh = { ...a, name: 'fresh.sif', dockerhash: 'dddddddddddd', ageDays: 0.2 };
    const t = statusTable([old, c, a, fresh]);
    expect(t.rows.map((r) => [r[0], r[1]])).toEqual([
      [c.stem, 'aaaaaaaaaaaa'],
      [a.stem, 'dddddddddddd'],
      [a.stem, 'aaaaaaaaaaaa'],
      [a.stem, 'cccccccccccc'],
    ]);
    expect(t.rows[1]).toContain('4 h');
  });
  it('puts parameters every image shares on one name=value line, not in columns', () => {
    const t = statusTable([a, { ...a, name: 'other.sif', dockerhash: 'bbbbbbbbbbbb' }]);
    expect(t.columns.map((col) => col.header)).toEqual([
      'stem',
      'dockerhash',
      'in',
      'linked',
      'size',
      'age',
      'checksum',
      'test',
    ]);
    expect(t.shared).toEqual(['rocm=6.2.0', 'python=3.12', 'mpi4py=3.1.6']);
  });
  it('filters by parameter and by stem (with *)', () => {
    expect(filterStatus(s, { where: parseWhere(['rocm=6.2.0']) }).images).toEqual([a]);
    expect(filterStatus(s, { where: parseWhere(['mpi4py=3.1.4', 'python=3.11']) }).images).toEqual([c]);
    expect(filterStatus(s, { stem: 'lumi-mpi4py-rocm-*', where: [] }).images).toEqual([a, b]);
    expect(filterStatus(s, { stem: c.stem, where: [] }).links.map((l) => l.name)).toEqual([c.stem]);
    expect(filterStatus(s, { stem: 'lumi-*', where: [] }).links.map((l) => l.name)).toEqual([
      a.stem,
      c.stem,
      'lumi-old',
    ]);
    expect(filterStatus(s, { stem: 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.?', where: [] }).images).toEqual([]);
  });
  it('refuses a --where that is not name=value, or names a parameter no image has', () => {
    expect(() => parseWhere(['rocm'])).toThrow(/--where "rocm" is not name=value/);
    expect(() => filterStatus(s, { where: parseWhere(['rocn=6.2.0']) })).toThrow(
      /no image in the tree has a parameter rocn \(they have: mpi4py, python, rocm\)/,
    );
    expect(filterStatus({ ...s, images: [] }, { where: parseWhere(['rocn=1']) }).images).toEqual([]);
  });
});
