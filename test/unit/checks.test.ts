import { parseOsu } from '../../src/checks/osu';
import { judge } from '../../src/checks/judge';
import { compareFigures, describeRegression, worstRegression } from '../../src/checks/gate';
import { parseChecks } from '../../src/recipe/checks';
import { batchScript } from '../../src/checks/slurm';
import { checkScript } from '../../src/checks/profile';
import { parseProfile } from '../../src/recipe/testing';
import { fillShell } from '../../src/emit/bash';
import { chartSvg, reportHtml } from '../../src/checks/report';
import type { TestRun } from '../../src/checks/results';
import { loadRecipe } from '../../src/recipe/load';

// Output as OSU 7.x prints it (header lines, aligned columns).
const LATENCY = `# OSU MPI Latency Test v7.4
# Datatype: MPI_CHAR.
# Size       Avg Latency(us)
1                       1.87
2                       1.86
4                       1.86
8                       1.90
1024                    3.21
4194304               410.55
`;

const BW = `# OSU MPI Bandwidth Test v7.4
# Datatype: MPI_CHAR.
# Size      Bandwidth (MB/s)
1                       2.64
2                       5.31
65536               21870.12
4194304             23947.77
`;

const BCAST_FULL = `# OSU MPI Broadcast Latency Test v7.4
# Datatype: MPI_CHAR.
# Size       Avg Latency(us)   Min Latency(us)   Max Latency(us)  Iterations
1                       2.10              1.51              2.93        1000
2                       2.08              1.50              2.88        1000
1048576               381.45            350.01            402.11         100
`;

const DEVICE = `# OSU MPI-ROCM Broadcast Latency Test v7.4
# Send Buffer on DEVICE (D) and Receive Buffer on DEVICE (D)
# Datatype: MPI_CHAR.
# Size       Avg Latency(us)
1                      12.50
8                      12.61
MPICH WARNING: some noise from the runtime
16                     12.70
`;

describe('OSU output', () => {
  it('reads point-to-point latency', () => {
    const r = parseOsu(LATENCY);
    expect(r).toMatchObject({ benchmark: 'OSU MPI Latency Test', kind: 'latency', unit: 'us' });
    expect(r.points).toHaveLength(6);
    expect(r.points[5]).toEqual({ size: 4194304, value: 410.55 });
  });
  it('reads bandwidth', () => {
    const r = parseOsu(BW);
    expect(r).toMatchObject({ kind: 'bandwidth', unit: 'MB/s' });
    expect(r.points[3]).toEqual({ size: 4194304, value: 23947.77 });
  });
  it('reads a collective with the full column set, taking the average', () => {
    const r = parseOsu(BCAST_FULL);
    expect(r).toMatchObject({ benchmark: 'OSU MPI Broadcast Latency Test', kind: 'latency' });
    expect(r.points).toEqual([
      { size: 1, value: 2.1 },
      { size: 2, value: 2.08 },
      { size: 1048576, value: 381.45 },
    ]);
  });
  it('reads device-buffer runs and skips runtime noise', () => {
    const r = parseOsu(DEVICE);
    expect(r.benchmark).toBe('OSU MPI-ROCM Broadcast Latency Test');
    expect(r.points.map((p) => p.size)).toEqual([1, 8, 16]);
  });
  it('finds nothing in text that is not OSU output', () => {
    expect(parseOsu('hello\n1 2\n').points).toEqual([]);
  });
});

const [latencyCheck, expectCheck] = parseChecks(
  [
    {
      name: 'bcast',
      ranks: '16',
      nodes: '2',
      gpus: '16',
      command: 'osu_bcast',
      figures: 'latency',
      env: { MPICH_GPU_SUPPORT_ENABLED: '1' },
    },
    { name: 'py', command: 'python t.py', expect: '/OK on \\d+ ranks/' },
  ],
  'r',
);

describe('checks and their judging', () => {
  it('parses checks with defaults and refuses bad ones in one line', () => {
    expect(latencyCheck).toMatchObject({ ranks: 16, nodes: 2, gpus: 16, timeoutSeconds: 600 });
    expect(() => parseChecks([{ name: 'x' }], 'r')).toThrow(
      'recipe r: checks[0].command: expected a string, found nothing',
    );
    expect(() => parseChecks([{ name: 'x', command: 'a', figures: 'speed' }], 'r')).toThrow(
      /checks\[0\]\.figures: expected one of "latency", "bandwidth"/,
    );
    expect(() => parseChecks([{ name: 'x', command: 'a', bogus: 1 }], 'r')).toThrow(
      'recipe r: checks[0]: unknown key "bogus"',
    );
    expect(() =>
      parseChecks(
        [
          { name: 'x', command: 'a' },
          { name: 'x', command: 'b' },
        ],
        'r',
      ),
    ).toThrow('checks[1].name: expected a name no other check has (x is taken)');
  });
  it('judges exit status, expected output and figures', () => {
    expect(judge(expectCheck, { exitCode: 0, output: 'cupy_mpi_check: OK on 16 ranks', durationMs: 1 }).passed).toBe(
      true,
    );
    expect(judge(expectCheck, { exitCode: 0, output: 'nope', durationMs: 1 })).toMatchObject({
      passed: false,
      reason: expect.stringMatching(/output lacks/),
    });
    expect(judge(expectCheck, { exitCode: 1, output: 'OK on 2 ranks', durationMs: 1 })).toMatchObject({
      passed: false,
      reason: 'exit status 1',
    });
    expect(judge(latencyCheck, { exitCode: 0, output: BCAST_FULL, durationMs: 1 })).toMatchObject({
      passed: true,
      figures: { kind: 'latency' },
    });
    expect(judge(latencyCheck, { exitCode: 0, output: BW, durationMs: 1 })).toMatchObject({
      passed: false,
      reason: 'expected latency figures, got bandwidth',
    });
    expect(judge(latencyCheck, { exitCode: null, output: '', durationMs: 1, outcome: 'timeout' })).toMatchObject({
      outcome: 'timeout',
      reason: 'timed out after 600 s',
    });
  });
});

describe('the regression gate on recorded figures', () => {
  const base = judge(latencyCheck, { exitCode: 0, output: BCAST_FULL, durationMs: 1 });
  it('passes within the tolerance and fails beyond it, per message size', () => {
    const slightly = judge(latencyCheck, {
      exitCode: 0,
      output: BCAST_FULL.replace('381.45', '400.00'),
      durationMs: 1,
    });
    expect(compareFigures([slightly], [base], 0.1)).toEqual([]);
    const worse = judge(latencyCheck, { exitCode: 0, output: BCAST_FULL.replace('381.45', '500.00'), durationMs: 1 });
    expect(compareFigures([worse], [base], 0.1)).toEqual([
      {
        check: 'bcast',
        size: 1048576,
        kind: 'latency',
        baseline: 381.45,
        value: 500,
        worseBy: expect.closeTo(0.3108, 3),
      },
    ]);
  });
  it('treats falling bandwidth as worse and rising bandwidth as better', () => {
    const bwCheck = { ...latencyCheck, figures: 'bandwidth' as const };
    const old = judge(bwCheck, { exitCode: 0, output: BW, durationMs: 1 });
    const faster = judge(bwCheck, { exitCode: 0, output: BW.replace('23947.77', '30000'), durationMs: 1 });
    const slower = judge(bwCheck, { exitCode: 0, output: BW.replace('23947.77', '10000'), durationMs: 1 });
    expect(compareFigures([faster], [old], 0.05)).toEqual([]);
    expect(compareFigures([slower], [old], 0.05).map((r) => r.size)).toEqual([4194304]);
  });
  it('refuses a run that stopped before a size the baseline measured, and names that size first', () => {
    // Cut after the 512 KiB line: the 1 MiB figure is missing, and a faster 4-byte one is no excuse.
    const lines = BCAST_FULL.split('\n');
    const cut = lines.filter((l) => !/^1048576\s/.test(l)).join('\n');
    const short = judge(latencyCheck, { exitCode: 0, output: cut, durationMs: 1 });
    expect(short.passed).toBe(true);
    const regressions = compareFigures([short], [base], 0.1);
    expect(regressions).toEqual([
      { check: 'bcast', size: 1048576, kind: 'latency', baseline: 381.45, value: null, worseBy: null },
    ]);
    const worse = judge(latencyCheck, { exitCode: 0, output: BCAST_FULL.replace('381.45', '900.00'), durationMs: 1 });
    const both = [...compareFigures([worse], [base], 0.1), ...regressions];
    expect(worstRegression(both)).toBe(regressions[0]);
    expect(describeRegression(regressions[0])).toBe(
      'bcast at 1048576 B, measured by the baseline (381.45) but not by this run',
    );
    expect(describeRegression(both[0])).toMatch(/^bcast at 1048576 B, latency 381.45 → 900 \(136% worse\)$/);
  });
  it('ignores checks this run did not run (a --check subset)', () => {
    expect(compareFigures([], [base], 0.1)).toEqual([]);
  });
});

describe('launching', () => {
  it("LUMI's profile: srun with the cpu masks and GPUs, singularity with the bindings", () => {
    const p = parseProfile({}, 'mpi4py');
    const script = batchScript({
      name: 'sifkit-test-x',
      workdir: '/scratch/run',
      checks: [latencyCheck],
      profile: p.slurm,
      sif: '/appl/x.sif',
    });
    expect(script).toContain('#SBATCH --partition=standard-g');
    expect(script).toContain('#SBATCH --nodes=2');
    expect(script).toContain('#SBATCH --exclusive');
    expect(script).toMatch(
      /timeout --signal=KILL 630 srun -N 2 -n 16 --cpu-bind=mask_cpu:0xfe\S+ --gpus 16 singularity exec -B \/var\/spool\/slurmd -B \/opt\/cray -B \/usr\/lib64\/libcxi.so.1 -B \/usr\/lib64\/libjansson.so.4 -B '\/scratch\/run':\/myrun '\/appl\/x.sif' '\/myrun\/check-bcast.sh' > 'bcast.out' 2>&1/,
    );
  });
  it('takes every value of the job script through its emitter: a hostile SIF name or directory is one quoted word, a hostile partition or option is refused', () => {
    const p = parseProfile({}, 'mpi4py');
    const script = batchScript({
      name: 'sifkit-test-x',
      workdir: "/scratch/a b'c",
      checks: [latencyCheck],
      profile: p.slurm,
      sif: '/appl/img$(touch${IFS}X).sif',
    });
    expect(script).toContain("-B '/scratch/a b'\\''c':/myrun '/appl/img$(touch${IFS}X).sif' ");
    expect(script).toContain("cd '/scratch/a b'\\''c' || exit 1\n");
    expect(script).not.toMatch(/#SBATCH.*scratch/);
    const bad = (slurm: Partial<typeof p.slurm>) => () =>
      batchScript({
        name: 'x',
        workdir: '/w',
        checks: [latencyCheck],
        profile: { ...p.slurm, ...slurm },
        sif: '/a.sif',
      });
    expect(bad({ partition: 'standard-g\ntouch X' })).toThrow(
      /^partition "standard-g\\ntouch X" is not a partition name/,
    );
    expect(bad({ sbatch: ['--exclusive\ntouch X'] })).toThrow(/sbatch option/);
    expect(bad({ sbatch: ['--comment=a b'] })).toThrow(/sbatch option/);
    expect(bad({ container: 'singularity exec "{sif}"' })).toThrow(/inside quotes/);
    expect(() => parseProfile({ slurm: { partition: 'a;b' } }, 'r')).toThrow(
      /^recipe r: testing.slurm.partition "a;b"/,
    );
    expect(() => parseProfile({ slurm: { sbatch: ['--x=$(id)'] } }, 'r')).toThrow(/^recipe r: testing.slurm.sbatch/);
    // The shell templates are checked when the recipe is read, not first when a job is written.
    expect(() => parseProfile({ slurm: { container: 'singularity exec "{sif}"' } }, 'r')).toThrow(
      /^recipe r: testing.slurm.container: \{sif\} is inside quotes/,
    );
    expect(() => parseProfile({ slurm: { cleanup: 'cat <<EOF\n{workdir}\nEOF' } }, 'r')).toThrow(
      /^recipe r: testing.slurm.cleanup: .* a line break/,
    );
    expect(() => parseProfile({ local: { launcher: 'mpiexec -n {rank}' } }, 'r')).toThrow(
      /^recipe r: testing.local.launcher: unknown placeholder \{rank\}/,
    );
    expect(checkScript(latencyCheck, p.slurm.launcher)).toBe(
      '#!/bin/sh\n# written by sifkit test\nexport MPICH_GPU_SUPPORT_ENABLED=\'1\'\nif [ -n "$WITH_CONDA" ]; then eval "$WITH_CONDA"; fi\nif command -v timeout >/dev/null 2>&1; then timeout -s KILL 600 osu_bcast; exit $?; fi\nexec osu_bcast\n',
    );
  });
  it("unsets what a check names before anything runs, as LUMI's host-buffer test does", () => {
    const [host] = parseChecks([{ name: 'host', command: 'osu_bcast', unset: ['MPICH_GPU_SUPPORT_ENABLED'] }], 'r');
    expect(checkScript(host, '').split('\n').slice(0, 4)).toEqual([
      '#!/bin/sh',
      '# written by sifkit test',
      'unset MPICH_GPU_SUPPORT_ENABLED',
      'if [ -n "$WITH_CONDA" ]; then eval "$WITH_CONDA"; fi',
    ]);
    expect(() => parseChecks([{ name: 'x', command: 'c', unset: 'MPICH_GPU_SUPPORT_ENABLED' }], 'r')).toThrow(
      'checks[0].unset: expected a list, found the string "MPICH_GPU_SUPPORT_ENABLED"',
    );
    expect(() => parseChecks([{ name: 'x', command: 'c', unset: ['A;B'] }], 'r')).toThrow(
      'checks[0].unset[0]: expected a variable name, found the string "A;B"',
    );
    expect(() => parseChecks([{ name: 'x', command: 'c', env: { A: '1' }, unset: ['A'] }], 'r')).toThrow(
      'checks[0].unset[0]: expected a variable not also set in env (A is)',
    );
  });
  it("the mpi4py recipe's checks run on 4 nodes x 8 GPUs, the host-buffer one with GPU support unset", async () => {
    // Read once, when the recipe loads.
    const { checks } = await loadRecipe('mpi4py');
    expect(checks.map((c) => [c.name, c.nodes, c.ranks, c.gpus, c.unset, c.env.MPICH_GPU_SUPPORT_ENABLED])).toEqual([
      ['osu-bcast-host', 4, 32, 32, ['MPICH_GPU_SUPPORT_ENABLED'], undefined],
      ['osu-bcast-host-gtl', 4, 32, 32, [], '1'],
      ['osu-bcast-device', 4, 32, 32, [], '1'],
      ['cupy-mpi', 4, 32, 32, [], '1'],
    ]);
  });
  it('refuses unknown placeholders', () => {
    expect(() => fillShell('run {nope}', { ranks: 1 }, 'the launcher')).toThrow(/unknown placeholder \{nope\}/);
  });
});

describe('the report', () => {
  const run = (image: string, started: string, output: string): TestRun => ({
    image,
    stem: image.replace(/-dockerhash.*/, ''),
    dockerhash: image.slice(-16, -4),
    recipe: 'r',
    runner: 'local',
    host: 'h',
    started,
    finished: started,
    passed: true,
    checks: [judge(latencyCheck, { exitCode: 0, output, durationMs: 1000 })],
  });
  it('says REFUSED for a run the gate refused, gives a column to the parameter that differs, and marks the linked image', () => {
    const a = {
      ...run('lumi-a-rocm-6.2.0-dockerhash-aaaaaaaaaaaa.sif', '2026-01-01T00:00:00Z', BCAST_FULL),
      params: { rocm: '6.2.0', python: '3.12' },
    };
    const b: TestRun = {
      ...run('lumi-a-rocm-6.3.4-dockerhash-bbbbbbbbbbbb.sif', '2026-02-01T00:00:00Z', BCAST_FULL),
      params: { rocm: '6.3.4', python: '3.12' },
      passed: false,
      gate: {
        verdict: 'refused',
        tolerance: 0.1,
        baseline: a.image,
        regressions: [{ check: 'bcast', size: 1, kind: 'latency', baseline: 1, value: 2, worseBy: 1 }],
      },
    };
    const html = reportHtml([a, b], new Date(0), { linked: new Set([a.image]) });
    const rows = html.split('\n').filter((l) => l.startsWith('<tr><th scope="row">'));
    expect(rows[0]).toMatch(
      /<td>6\.2\.0<\/td><td class="pass">linked<\/td>.*<td class="none"[^>]*>–<\/td><td class="pass">PASSED<\/td><\/tr>$/,
    );
    expect(rows[1]).toMatch(
      /<td>6\.3\.4<\/td><td class="none">–<\/td>.*>REFUSED<br><small>1 worse, up to 100%<\/small><\/td><td class="fail">REFUSED<\/td><\/tr>$/,
    );
    expect(html).toContain('<th>rocm</th>');
    expect(html).not.toContain('<th>python</th>');
    // The legend: one line each, labelled by what differs, never two on one line.
    const legend = [...html.matchAll(/<text x="(\d+)" y="(\d+)" font-size="11">(rocm [^<]*)<\/text>/g)].map((m) => [
      Number(m[2]),
      m[3],
    ]);
    expect(legend.map((l) => l[1])).toEqual(['rocm 6.2.0 (aaaaaaaaaaaa)', 'rocm 6.3.4 (bbbbbbbbbbbb)']);
    expect(Number(legend[1][0]) - Number(legend[0][0])).toBeGreaterThanOrEqual(14);
  });
  it('draws one line per image version and a pass/fail row each', () => {
    const html = reportHtml([
      run('lumi-a-dockerhash-aaaaaaaaaaaa.sif', '2026-01-01T00:00:00Z', BCAST_FULL),
      run('lumi-a-dockerhash-bbbbbbbbbbbb.sif', '2026-02-01T00:00:00Z', BCAST_FULL.replace('381.45', '300')),
    ]);
    expect(html.match(/<polyline/g)).toHaveLength(2);
    expect(html.match(/<tr><th scope="row">/g)).toHaveLength(2);
    expect(html).toContain('bcast: latency against message size (lower is better)');
    // Self-contained: nothing to run, nothing fetched.
    expect(html).not.toMatch(/<script|\b(src|href)=/);
  });
  it('escapes what it shows', () => {
    expect(
      chartSvg('<b>', 'us', [
        {
          label: '"x"&',
          points: [
            { size: 1, value: 1 },
            { size: 2, value: 2 },
          ],
        },
      ]),
    ).not.toMatch(/<b>|"x"&/);
  });
});
