import { runTorture } from '../../bench/torture';
import { CLI } from '../support/cli';

// The seeded slice of bench/torture.ts (the full run is `npm run bench`).
// SIFKIT_TORTURE_SEED replays another seed; the seed is in every failure line.
const seed = Number(process.env.SIFKIT_TORTURE_SEED ?? '1201');
const kills = Number(process.env.SIFKIT_TORTURE_KILLS ?? '8');

jest.setTimeout(240_000);

describe('torture: SIGKILL at measured random instants of stage, promote, retire --apply and verify --repair', () => {
  it(`seed ${seed}, ${kills} kills: no torn file, no dangling link, nothing wedged, verify clean after repair, nothing lost`, async () => {
    const r = await runTorture({
      seed,
      kills,
      cli: CLI,
      padBytes: 4 << 20,
      log: (l) => process.stderr.write(`torture: ${l}\n`),
    });
    process.stderr.write(
      `torture slice: seed ${seed}, ${r.kills} kills ${JSON.stringify(r.killsBy)}, ${r.finishedFirst} ended first, ${(r.totalMs / 1000).toFixed(1)} s\n`,
    );
    expect({
      seed,
      failures: r.failures,
      torn: r.torn,
      dangling: r.dangling,
      wedged: r.wedged,
      unclean: r.unclean,
      lost: r.lost,
    }).toEqual({ seed, failures: [], torn: 0, dangling: 0, wedged: 0, unclean: 0, lost: 0 });
    expect(r.kills).toBeGreaterThanOrEqual(kills);
    // Round-robin: every command was killed.
    for (const k of ['stage', 'promote', 'retire', 'repair'] as const)
      expect({ seed, kind: k, killed: r.killsBy[k] > 0 }).toEqual({ seed, kind: k, killed: true });
  });
});
