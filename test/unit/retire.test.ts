import { parsePolicy } from '../../src/tree/policy';
import { archiveTarget, planRetire, type TreeImage } from '../../src/tree/retire';

const NOW = Date.parse('2026-11-24T00:00:00Z');
const day = 86_400_000;

function images(stem: string, rocm: string, n: number, hashBase: number): TreeImage[] {
  // One image every 20 days, the last the newest; in both directories.
  return Array.from({ length: n }, (_, i) => i).flatMap((i) =>
    (['tested-containers', 'easybuild-sif-images'] as const).map((dir) => ({
      dir,
      stem,
      name: `${stem}-dockerhash-${(hashBase + i).toString(16).padStart(12, '0')}.sif`,
      dockerhash: (hashBase + i).toString(16).padStart(12, '0'),
      recipe: 'mpi4py',
      params: { rocm },
      created: NOW - (n - i) * 20 * day,
      isLink: false,
    })),
  );
}

const POLICY = parsePolicy(
  `
directories:
  tested-containers: { keep_newest: 2, series: [stem], keep_younger_than_days: 10 }
  easybuild-sif-images: { keep_newest: 3, series: [stem, rocm-minor], keep_younger_than_days: 30 }
`,
  'test',
);

describe('retire plan', () => {
  const stemA = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
  const stemB = 'lumi-mpi4py-rocm-6.2.4-python-3.12-mpi4py-4.0.1';
  const all = [...images(stemA, '6.2.0', 300, 0x100000), ...images(stemB, '6.2.4', 200, 0x200000)];
  const plan = (extra: Partial<Parameters<typeof planRetire>[0]> = {}) =>
    planRetire({
      images: all,
      links: [],
      easyconfigs: new Map(),
      policy: POLICY,
      now: NOW,
      includeReferenced: false,
      ...extra,
    });

  it('keeps the newest N per series in each directory, by the policy', () => {
    const p = plan();
    const kept = (dir: string, stem: string) =>
      p.decisions.filter((d) => d.dir === dir && d.name.startsWith(stem) && d.action === 'keep').map((d) => d.name);
    expect(kept('tested-containers', stemA)).toHaveLength(2);
    expect(kept('tested-containers', stemB)).toHaveLength(2);
    // easybuild: newest 3 of each stem; the rocm-6.2 series (both stems) keeps the newest 3 of all, already among those.
    expect(kept('easybuild-sif-images', stemA)).toHaveLength(3);
    expect(kept('easybuild-sif-images', stemB)).toHaveLength(3);
    expect(p.decisions.filter((d) => d.action === 'retire')).toHaveLength(500 * 2 - 10);
    expect(p.decisions.find((d) => d.action === 'retire')?.rule).toMatch(/^old: \d+ newer in its series/);
  });

  it('keeps anything younger than the age limit, and pinned images', () => {
    const young = planRetire({
      images: all,
      links: [],
      easyconfigs: new Map(),
      policy: {
        ...POLICY,
        directories: {
          ...POLICY.directories,
          'tested-containers': { ...POLICY.directories['tested-containers'], keepYoungerThanDays: 70 },
        },
      },
      now: NOW,
      includeReferenced: false,
    });
    expect(young.decisions.filter((d) => d.dir === 'tested-containers' && d.action === 'keep')).toHaveLength(3 + 3);
    const pinnedName = all[0].name;
    const p = planRetire({
      images: all,
      links: [],
      easyconfigs: new Map(),
      policy: { ...POLICY, pinned: [pinnedName] },
      now: NOW,
      includeReferenced: false,
    });
    expect(p.decisions.filter((d) => d.name === pinnedName).map((d) => [d.action, d.rule])).toEqual([
      ['keep', 'pinned'],
      ['keep', 'pinned'],
    ]);
  });

  it('never retires what a link or an active EasyConfig names', () => {
    const old = all.find((i) => i.dir === 'easybuild-sif-images')!;
    const p = plan({
      links: [
        {
          name: `${stemA}.sif`,
          target: `../easybuild-sif-images/${old.name}`,
          targetDir: 'easybuild-sif-images',
          targetName: old.name,
        },
      ],
      easyconfigs: new Map([[all[2].dockerhash, ['easybuild/easyconfigs/m/mpi4py/old.eb']]]),
    });
    expect(p.decisions.find((d) => d.dir === 'easybuild-sif-images' && d.name === old.name)).toMatchObject({
      action: 'keep',
      references: [`sif-images/${stemA}.sif`],
    });
    expect(p.decisions.find((d) => d.dir === 'easybuild-sif-images' && d.name === all[2].name)).toMatchObject({
      action: 'keep',
      references: ['EasyConfig easybuild/easyconfigs/m/mpi4py/old.eb'],
    });
    // The EasyConfig keeps the easybuild file only; the tested copy is not what modules use.
    expect(p.decisions.find((d) => d.dir === 'tested-containers' && d.name === all[2].name)?.action).toBe('retire');
  });

  it('retires a broken image even when new, and plans archive and link moves only with includeReferenced', () => {
    const newest = all.filter((i) => i.stem === stemB && i.dir === 'easybuild-sif-images').slice(-1)[0];
    const links = [
      {
        name: `${stemB}.sif`,
        target: `../easybuild-sif-images/${newest.name}`,
        targetDir: 'easybuild-sif-images',
        targetName: newest.name,
      },
    ];
    const easyconfigs = new Map([[newest.dockerhash, ['easybuild/easyconfigs/m/mpi4py/mpi4py-4.0.1.eb']]]);
    const policy = { ...POLICY, broken: [{ name: newest.name, reason: 'hangs in Allreduce after the update' }] };
    const blocked = planRetire({ images: all, links, easyconfigs, policy, now: NOW, includeReferenced: false });
    expect(blocked.decisions.find((d) => d.dir === 'easybuild-sif-images' && d.name === newest.name)).toMatchObject({
      action: 'blocked',
      broken: 'hangs in Allreduce after the update',
    });
    expect(blocked.archive).toEqual([]);
    const go = planRetire({ images: all, links, easyconfigs, policy, now: NOW, includeReferenced: true });
    expect(go.decisions.find((d) => d.dir === 'easybuild-sif-images' && d.name === newest.name)?.action).toBe('retire');
    expect(go.archive).toEqual([
      {
        from: 'easybuild/easyconfigs/m/mpi4py/mpi4py-4.0.1.eb',
        to: 'easybuild/easyconfigs/__archive__/m/mpi4py/mpi4py-4.0.1.eb',
        for: newest.name,
      },
    ]);
    const previous = all.filter((i) => i.stem === stemB && i.dir === 'easybuild-sif-images').slice(-2)[0];
    expect(go.links).toEqual([
      { link: `${stemB}.sif`, from: links[0].target, to: `../easybuild-sif-images/${previous.name}`, for: newest.name },
    ]);
    // A broken image does not push a sound one out of its series.
    expect(
      go.decisions.filter((d) => d.dir === 'easybuild-sif-images' && d.name.startsWith(stemB) && d.action === 'keep'),
    ).toHaveLength(3);
  });

  it('archives into __archive__/<letter>/<name>/', () => {
    expect(archiveTarget('easybuild/easyconfigs/m/mpi4py/x.eb')).toBe(
      'easybuild/easyconfigs/__archive__/m/mpi4py/x.eb',
    );
  });
});

describe('retention policy errors', () => {
  it.each([
    ['directories: { sif-images: { keep_newest: 1 } }', /^retention.yaml: directories: unknown key "sif-images"$/],
    [
      'directories: { tested-containers: { keep_newest: -1 } }',
      /^retention.yaml: directories.tested-containers.keep_newest: expected a number >= 0, found the number -1$/,
    ],
    [
      'directories: { tested-containers: { series: [month] } }',
      /^retention.yaml: directories.tested-containers.series\[0\]: expected one of "stem", "rocm-minor", "app", found the string "month"$/,
    ],
    ['broken: [{ name: x.sif }]', /^retention.yaml: broken\[0\].reason: expected a string, found nothing$/],
    [
      'backup_command: rclone copy somewhere',
      /^retention.yaml: backup_command: expected a command with \{path\} in it, found the string "rclone copy somewhere"$/,
    ],
    ['keep: 3', /^retention.yaml: \(the document\): unknown key "keep"$/],
    ['directories: [1, 2', /not valid YAML/],
  ])('%s', (text, message) => {
    expect(() => parsePolicy(text, 'retention.yaml')).toThrow(message);
  });
});
