import { buildBoundFrom, project, type StageTimes } from '../../bench/projection';

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
});
