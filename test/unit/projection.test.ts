import { buildBoundFrom, project, projectPlanned, type StageTimes } from '../../bench/projection';

const t: StageTimes = { build: 100, archive: 10, convert: 60, test: 30, publish: 2, queue: 1 };

describe('the release projection', () => {
  it('one variant: local is the sum of the stages; Slurm adds the queue twice', () => {
    expect(project(t, 1, 1).local).toBe(100 + 10 + 60 + 30 + 2);
    expect(project(t, 1, 1).slurm).toBe(100 + 10 + 1 + (60 + 30 + 1) + 2);
  });

  it('more nodes shorten a Slurm release until every variant has one; local is bound by its one conversion line or its builds', () => {
    const slurm = [1, 2, 5, 10, 20].map((k) => project(t, 10, k).slurm);
    expect(slurm).toEqual([...slurm].sort((a, b) => b - a));
    expect(project(t, 10, 10).slurm).toBe(project(t, 10, 20).slurm);
    // Builds (100 s) outlast archive + convert (70 s) here, so the build line bounds local.
    expect(project(t, 10, 1).local).toBe(10 * 100 + 10 + 60 + 30 + 10 * 2);
    expect(project({ ...t, convert: 200 }, 10, 1).local).toBe(100 + 10 * 210 + 30 + 10 * 2);
  });

  it('finds where builds become the bound', () => {
    // One variant's build + archive (110 s) already outlasts its jobs (91 s).
    expect(buildBoundFrom(t, 4)).toBe(1);
    // Conversions of 500 s: on 4 nodes the jobs always bound (4 builds, 440 s, fit in one wave of 531 s); on 8 from 5 variants.
    expect(buildBoundFrom({ ...t, convert: 500 }, 4)).toBeUndefined();
    expect(buildBoundFrom({ ...t, convert: 500 }, 8)).toBe(5);
    expect(project({ ...t, convert: 500 }, 20, 16).buildShare).toBeGreaterThan(0.5);
  });

  it('pipelines a planned run: engines build side by side, a follower waits for its leader, then its slot', () => {
    // Engine A: v0 (10 steps), then v1 after it (2); v2 on A too, no wait (3): it asks first, so it builds before v1.
    // Engine B: v3 (10 steps). 10 s a step; every archive is saved outside the slot.
    const builds = [
      { index: 0, engine: 'A', heavy: 10 },
      { index: 1, engine: 'A', heavy: 2, after: 0 },
      { index: 2, engine: 'A', heavy: 3 },
      { index: 3, engine: 'B', heavy: 10 },
    ];
    const p = projectPlanned(t, builds, 10, 16);
    // Builds end: v0 100, v3 100 (side by side), v2 130 (it asked at 0), v1 150 (it asked at 100, behind v2).
    // The last archive is v1's at 160; its jobs: queued 1, convert 60, queued 1, test 30 = 252; then the 4 publishes
    // under the lock, the other three ended earlier (v0, v3 at 202, v2 at 232), so only v1's 2 s follow 252.
    expect(p.lastArchive).toBe(160);
    expect(p.wall).toBe(160 + 1 + 60 + 1 + 30 + 2);
    expect(p.engines).toEqual([
      { engine: 'A', variants: 3, heavy: 15, busy: 150 },
      { engine: 'B', variants: 1, heavy: 10, busy: 100 },
    ]);
    // One node: the jobs run one after another.
    expect(projectPlanned(t, builds, 10, 1).wall).toBeGreaterThan(p.wall);
    expect(() => projectPlanned(t, [{ index: 1, engine: 'A', heavy: 1, after: 0 }], 10, 1)).toThrow(/not in the plan/);
  });
});
