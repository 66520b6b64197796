import { DockerfileParser } from 'dockerfile-ast';
import { loadRecipe, readFragments } from '../../src/recipe/load';
import { resolveValues, variantValues } from '../../src/recipe/params';
import { keptLines, substitute } from '../../src/recipe/template';
import type { ParamValues, Recipe } from '../../src/recipe/types';

/**
 * Issue 25.3: the built-in example runs the real recipe's fragments.
 *
 * The rule: every RUN step that some variant of mpi4py's build matrix
 * renders from a fragment file must be rendered by the example (mpi4py-cpu)
 * from the same fragment file and the same line of it, unless the step's
 * text shows it needs something that cannot be reached here (NEEDS below:
 * AMD's repository or ROCm's compilers, SUSE's repositories, a download
 * from anywhere but the build-time server, or what such a step made).
 * A fragment with no RUN step at all (only ENV, like cray-info.docker)
 * must be in the example's fragment list. So a new step, a new fragment or
 * a `{{ if target == lumi-g }}` around something the example could run
 * fails here until the example runs it or the reason it cannot is real.
 */
const NEEDS: Array<{ why: string; re: RegExp }> = [
  {
    why: "AMD's repository or ROCm's compilers",
    re: /repo\.radeon\.com|amdgpu-install|\$ROCM_RPM|\$ROCM_PATH\/llvm\/bin\/clang|--enable-rocm|\$CUPY_SOURCE/,
  },
  { why: "SUSE's registry and repositories", re: /\bzypper\b|registry\.suse\.com|opensuse\.org/ },
  {
    why: 'a download from the internet (only the build-time server and Debian are reachable here)',
    re: /https?:\/\/(?!127\.0\.0\.1[:/]|localhost[:/])/,
  },
  { why: "conda's packages (Anaconda's repository)", re: /\bconda create\b/ },
  { why: 'the wheel a step above built from its download', re: /\/opt\/wheels\// },
  { why: "ROCm 5.4's compilers (only before ROCm 5.6, from AMD's packages)", re: /libstdc\+\+\.so\*/ },
];

interface Step {
  /** fragment:line of the instruction in the fragment file (1-based). */
  at: string;
  text: string;
}

/** The RUN steps a variant renders, each named by the fragment line it comes from. */
function runSteps(fragments: Array<[string, string]>, values: ParamValues): { steps: Step[]; withoutRun: string[] } {
  const steps: Step[] = [];
  const withoutRun: string[] = [];
  for (const [rel, text] of fragments) {
    const lines = text.split('\n');
    const kept = keptLines(text, values, rel);
    // A declared source (recipe/sources.ts) comes from the source cache, which only its upstream can fill: written as its download.
    const rendered = substitute(
      kept.map((i) => lines[i]).join('\n'),
      values,
      rel,
      (name, dest) => `curl -fsS -o ${dest} https://upstream.invalid/${name}`,
    );
    const runs = DockerfileParser.parse(rendered)
      .getInstructions()
      .filter((ins) => ins.getKeyword() === 'RUN');
    if (runs.length === 0) withoutRun.push(rel);
    for (const ins of runs)
      steps.push({ at: `${rel}:${kept[ins.getRange().start.line] + 1}`, text: ins.getArgumentsContent() ?? '' });
  }
  return { steps, withoutRun };
}

let lumi: Recipe;
let example: Recipe;
let lumiFragments: Array<[string, string]>;
let exampleFragments: Array<[string, string]>;
beforeAll(async () => {
  [lumi, example] = await Promise.all([loadRecipe('mpi4py'), loadRecipe('mpi4py-cpu')]);
  [lumiFragments, exampleFragments] = await Promise.all([readFragments(lumi), readFragments(example)]);
});

describe('the example runs the real fragments', () => {
  it('renders every step of mpi4py that could run here from the same fragment line', () => {
    const ran = new Set(runSteps(exampleFragments, resolveValues(example, {})).steps.map((s) => s.at));
    const missing = new Set<string>();
    const excused = new Map<string, string>();
    const withoutRun = new Set<string>();
    for (const values of variantValues(lumi, {}, true)) {
      const { steps, withoutRun: w } = runSteps(lumiFragments, values);
      w.forEach((f) => withoutRun.add(f));
      for (const s of steps) {
        if (ran.has(s.at)) continue;
        const need = NEEDS.find((n) => n.re.test(s.text));
        if (need) excused.set(s.at, need.why);
        else missing.add(`${s.at}: RUN ${s.text.slice(0, 80)}`);
      }
    }
    expect([...missing]).toEqual([]);
    expect([...withoutRun].filter((f) => !example.fragments.includes(f))).toEqual([]);
    // Every reason is used: a stale one would excuse a step nobody looks at.
    expect(NEEDS.filter((n) => ![...excused.values()].includes(n.why)).map((n) => n.why)).toEqual([]);
  });

  it('shares the Cray info and hook, the served tools, the amdgpu-arch source, WITH_CONDA, the checks and the stages', () => {
    const shared = lumi.fragments.filter((f) => example.fragments.includes(f));
    expect(shared).toEqual([
      'fragments/cray-info.docker',
      'fragments/rocm.docker',
      'fragments/checks.docker',
      'fragments/miniconda.docker',
      'fragments/conda-env.docker',
      'fragments/mpi4py-cray.docker',
      'fragments/components.docker',
    ]);
    // The same stages (issue 27.3): what the example's build proves file for file holds for LUMI's definition.
    const stages = (fragments: Array<[string, string]>, values: ParamValues) =>
      fragments.flatMap(([rel, text]) =>
        substitute(text, values, rel, () => '')
          .split('\n')
          .filter((l) => l.startsWith('FROM '))
          .map((l) => l.replace(/^FROM \S+ AS base$/, 'FROM os AS base')),
      );
    expect(stages(exampleFragments, resolveValues(example, {}))).toEqual(
      stages(lumiFragments, resolveValues(lumi, {})),
    );
    const steps = runSteps(exampleFragments, resolveValues(example, {}))
      .steps.map((s) => s.text)
      .join('\n');
    expect(steps).toContain('curl -fsSL -o rocminfo "http://127.0.0.1:${SERVER_PORT}/rocminfo"');
    expect(steps).toContain('g++-12 /tmp/amdgpu-arch.cpp -DNUM_TARGETS=8 -o amdgpu-arch');
    expect(steps).toContain('curl -fsSL -o /cpe.tar "http://127.0.0.1:${SERVER_PORT}/cpe-${CPE_VERSION}.tar"');
    expect(steps).toMatch(/\$REMOVE_CRAY_DEPS$/m);
    expect(example.served.map((s) => `${s.file} ${s.role}`)).toEqual(lumi.served.map((s) => `${s.file} ${s.role}`));
  });

  it('fails when a step the example could run is left out of it (the rule has teeth)', () => {
    const withExtra = lumiFragments.map(([rel, text]): [string, string] => [
      rel,
      rel === 'fragments/conda-env.docker'
        ? `${text}\n{{ if target == lumi-g }}\nRUN echo only on LUMI\n{{ end }}\n`
        : text,
    ]);
    const ran = new Set(runSteps(exampleFragments, resolveValues(example, {})).steps.map((s) => s.at));
    const steps = runSteps(withExtra, resolveValues(lumi, {})).steps.filter(
      (s) => !ran.has(s.at) && !NEEDS.some((n) => n.re.test(s.text)),
    );
    expect(steps.map((s) => s.text)).toEqual(['echo only on LUMI']);
  });
});
