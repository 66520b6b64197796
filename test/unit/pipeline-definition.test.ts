/**
 * Stages say what they need and give; a pipeline whose order leaves a
 * stage without what it needs is refused when it is loaded, in one line
 * naming the stage and what it lacks.
 */
import * as path from 'node:path';
import { InputError } from '../../src/errors';
import { loadPipeline, parsePipeline } from '../../src/pipeline/definition';
import { STAGES } from '../../src/pipeline/registry';

const SHIPPED = path.join(__dirname, '..', '..', 'pipelines');
const doc = (...stages: string[]) => `name: p\nstages: [${stages.join(', ')}]\n`;

describe('pipeline definitions', () => {
  it.each(['render', 'build', 'release', 'promote', 'retire'])('loads the shipped pipeline %s', async (name) => {
    const def = await loadPipeline(name, STAGES, SHIPPED);
    expect(def.stages.length).toBeGreaterThan(0);
  });

  it.each([
    [['convert'], 'stages[0] convert needs rendered and build, which no stage before it gives'],
    [['build', 'render'], 'stages[0] build needs rendered, which no stage before it gives'],
    [['render', 'convert', 'build'], 'stages[1] convert needs build, which no stage before it gives'],
    [['render', 'promote'], 'stages[1] promote needs build, which no stage before it gives'],
  ])('refuses %j: %s', (stages, message) => {
    const parse = () => parsePipeline(doc(...stages), 'p.yaml', STAGES);
    expect(parse).toThrow(InputError);
    expect(parse).toThrow(`p.yaml: ${message}`);
    expect(() => parse()).not.toThrow(/\n/);
  });

  it.each([
    [
      "  - stage: retire\n    with:\n      apply: 'yes'\n",
      'stages[1] retire: with: apply: expected one of "true", "false", found the string "yes"',
    ],
    [
      '  - build\n  - stage: test\n    with:\n      tolerance: lots\n',
      'stages[2] test: with: tolerance: expected a fraction such as 0.1, found the string "lots"',
    ],
    [
      '  - build\n  - stage: test\n    with:\n      runner: cloud\n',
      'stages[2] test: with: runner: expected one of "local", "slurm", found the string "cloud"',
    ],
    [
      '  - build\n  - stage: promote\n    with:\n      to: everywhere\n',
      'stages[2] promote: with: to: expected one of "sif-images", "easybuild-sif-images", "all", found the string "everywhere"',
    ],
    [
      '  - build\n  - stage: promote\n    with:\n      too: all\n',
      'stages[2] promote: with: (the document): unknown key "too"',
    ],
    [
      "  - stage: build\n    with:\n      rebuild: 'true'\n",
      'stages[1] build: with: (the document): unknown key "rebuild"',
    ],
  ])("checks each stage's with: when loading, in one line: %j", (tail, message) => {
    const parse = () => parsePipeline(`name: p\nstages:\n  - render\n${tail}`, 'p.yaml', STAGES);
    expect(parse).toThrow(InputError);
    expect(parse).toThrow(`p.yaml: ${message}`);
  });

  it("takes each stage's with: options as its flags take them", () => {
    const def = parsePipeline(
      "name: p\nstages:\n  - render\n  - build\n  - stage: test\n    with:\n      runner: slurm\n      tolerance: '0.25'\n  - stage: retire\n    with:\n      apply: 'true'\n",
      'p.yaml',
      STAGES,
    );
    expect(def.stages.map((s) => s.with)).toEqual([{}, {}, { runner: 'slurm', tolerance: 0.25 }, { apply: true }]);
  });

  it('takes any order where each need is given earlier', () => {
    expect(
      parsePipeline(doc('render', 'build', 'test', 'convert', 'stage', 'retire'), 'p.yaml', STAGES).stages.map(
        (s) => s.stage,
      ),
    ).toEqual(['render', 'build', 'test', 'convert', 'stage', 'retire']);
    expect(parsePipeline(doc('retire'), 'p.yaml', STAGES).stages).toHaveLength(1);
  });

  it('has every need of every stage given by some stage', () => {
    const given = new Set(Object.values(STAGES).flatMap((s) => s.gives ?? []));
    for (const s of Object.values(STAGES))
      for (const n of s.needs ?? []) expect([s.name, given.has(n)]).toEqual([s.name, true]);
    for (const s of Object.values(STAGES)) expect([s.name, (s.gives ?? []).length > 0]).toEqual([s.name, true]);
  });
});
