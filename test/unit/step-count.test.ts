import { renderMatrix } from '../support/recipes';
import { buildSteps, countRunSteps } from '../../src/recipe/steps';
import { definitionEnv } from '../../src/recipe/fetches';
import { baseImages, parseDockerfile } from '../../src/recipe/parsed-dockerfile';

/** Issue 27.3: a component built in its own stage counts once per set of what it uses. */
const variant = (python: string, osu: string) =>
  [
    'FROM debian:bookworm-slim AS rocm',
    'RUN make-rocm',
    'FROM rocm AS osu',
    `RUN make-osu ${osu}`,
    'FROM rocm AS image',
    `RUN make-python ${python}`,
    'COPY --from=osu /opt/osu /opt/osu',
    'RUN after-the-copy',
  ].join('\n');

describe('buildSteps across stages, and countRunSteps', () => {
  it('counts a stage FROM an earlier one as built on it, and a copy as depending on the stage copied', () => {
    const c = countRunSteps(
      [variant('3.10', '7.2'), variant('3.11', '7.2'), variant('3.12', '7.2')].map((d) =>
        buildSteps(parseDockerfile(d)),
      ),
    );
    // rocm and osu once, python 3 times, the step after the copy 3 times (its stage differs).
    expect(c).toEqual({ definitions: 3, runSteps: 12, distinctRunSteps: 1 + 1 + 3 + 3 });
  });

  it('makes a step after COPY --from depend on what the stage built', () => {
    const a = buildSteps(parseDockerfile(variant('3.12', '7.2')));
    const b = buildSteps(parseDockerfile(variant('3.12', '7.3')));
    expect(a[1].key).toBe(b[1].key); // ROCm: the same
    expect(a[3].key).not.toBe(b[3].key); // OSU: another version
    expect(a[5].key).toBe(b[5].key); // Python does not use OSU
    expect(a[7].key).not.toBe(b[7].key); // after the copy: differs
  });

  it('tells an image from a stage by name only when the stage was named before', () => {
    const stageFirst = buildSteps(parseDockerfile('FROM alpine AS base\nRUN a\nFROM base\nRUN b'));
    const imageOnly = buildSteps(parseDockerfile('FROM alpine\nRUN a\nFROM base\nRUN b'));
    expect(stageFirst[3].key).not.toBe(imageOnly[3].key);
    expect(stageFirst[3].stage).toBe(1);
  });

  it('gives the one-stage order of the same steps no sharing across a varying step', () => {
    const oneStage = (python: string) => `FROM debian\nRUN make-rocm\nRUN make-python ${python}\nRUN make-osu 7.2`;
    expect(countRunSteps(['3.10', '3.11'].map((p) => buildSteps(parseDockerfile(oneStage(p))))).distinctRunSteps).toBe(
      1 + 2 + 2,
    );
  });
});

describe('stages in the render-time checks', () => {
  it('resolves ENV a stage inherits from the stage it starts FROM', () => {
    const env = definitionEnv(
      parseDockerfile(
        'FROM debian AS rocm\nENV ROCM_PATH="/opt/rocm"\nFROM debian AS other\nENV X=1\nFROM rocm\nENV Y="$ROCM_PATH/bin"',
      ),
    );
    expect(env.get('ROCM_PATH')).toBe('/opt/rocm');
    expect(env.get('Y')).toBe('/opt/rocm/bin');
    expect(env.has('X')).toBe(false);
  });

  it('lists base images, not stage names, for the provenance', () => {
    expect(
      baseImages(parseDockerfile('FROM debian:bookworm-slim AS rocm\nFROM rocm AS osu\nFROM ROCM\nFROM alpine')),
    ).toEqual(['debian:bookworm-slim', 'alpine']);
    // scratch is the empty start, no image to resolve.
    expect(baseImages(parseDockerfile('FROM scratch AS checks\nFROM alpine'))).toEqual(['alpine']);
  });
});

describe("LUMI's matrix (bench: SIFKIT_BENCH_ONLY=stages npm run bench)", () => {
  it('builds OSU once per ROCm, the checks once for the matrix and Python once per OS and Python, not once per variant', async () => {
    const rendered = await renderMatrix('mpi4py');
    const distinct = (...names: string[]) =>
      new Set(rendered.map((r) => names.map((n) => String(r.values[n])).join(' '))).size;
    // Each variant's steps from the render's own parse, once: parsing 41 definitions again per question was most of this file's time.
    const stepsOf = new Map(rendered.map((r) => [r, buildSteps(r.parsed)]));
    const stageOf = (name: string) => (r: (typeof rendered)[number]) => {
      const lines = r.dockerfile.split('\n');
      const from = lines.findIndex((l) => new RegExp(`^FROM \\S+ AS ${name}$`).test(l));
      const n = lines.slice(0, from + 1).filter((l) => l.startsWith('FROM ')).length - 1;
      return stepsOf.get(r)!.filter((s) => s.instruction === 'RUN' && s.stage === n);
    };
    const keysOf = (name: string, step: number) => new Set(rendered.map((r) => stageOf(name)(r)[step].key)).size;
    expect(keysOf('osu', 0)).toBe(distinct('rocm'));
    // The checks stage, FROM scratch, runs nothing and copies the same files for every variant.
    const checks = rendered.map((r) => stageOf('checks')(r));
    expect(checks.every((runs) => runs.length === 0)).toBe(true);
    const checkCopies = rendered.map((r) => {
      const steps = stepsOf.get(r)!;
      const from = steps.find((s) => s.instruction === 'FROM' && /^FROM scratch AS checks$/.test(s.text))!;
      return steps.filter((s) => s.stage === from.stage && s.instruction === 'COPY').map((s) => s.key);
    });
    expect(new Set(checkCopies.flat()).size).toBe(1);
    // Miniconda once per OS (and installer); the environment and numpy once per OS and Python.
    expect(keysOf('python', 0)).toBe(distinct('bci', 'miniconda'));
    expect([keysOf('python', 1), keysOf('python', 2)]).toEqual([
      distinct('bci', 'miniconda', 'python'),
      distinct('bci', 'miniconda', 'python'),
    ]);
    const c = countRunSteps(rendered.map((r) => stepsOf.get(r)!));
    // 240 with every component on the variant's own line (508cfdc); 170 with OSU and the checks in stages FROM rocm;
    // 146 with the checks FROM base; 143 with them FROM scratch.
    expect(c.distinctRunSteps).toBe(143);
  });
});
