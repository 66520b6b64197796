/**
 * The CLI's start-up: every command loads the whole command tree and the
 * library (index.ts), so a package that is slow to load is required where
 * it is used, not at the top of its module. Checked on the built program
 * (dist/, as `sifkit` runs it): none of them is loaded before a command
 * asks for it, and each still loads when one does.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CLI } from '../support/cli';

const run = promisify(execFile);
const DIST_SRC = path.dirname(path.dirname(CLI));

/** Each took 20-200 ms to load at every launch (measured with farm-bench, README "CLI start-up"). */
const LOADED_ON_USE = [
  'dockerode',
  '@cyclonedx/cyclonedx-library',
  'packageurl-js',
  'openpgp',
  '@octokit/rest',
  '@octokit/plugin-retry',
  '@octokit/plugin-throttling',
  'yaml',
  'dockerfile-utils',
  'dockerfile-ast',
];

/** The packages a fresh node has loaded after `code` (awaited) ran, by name, from its require cache. */
async function packagesAfter(code: string): Promise<string[]> {
  const script = `(async () => {
    ${code};
    const names = new Set();
    for (const f of Object.keys(require.cache)) {
      const m = f.split('/node_modules/').pop();
      if (m === f) continue;
      const parts = m.split('/');
      names.add(parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0]);
    }
    process.stdout.write(JSON.stringify([...names].sort()));
  })().catch((e) => { console.error(e); process.exit(1); });`;
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: path.dirname(path.dirname(DIST_SRC)) });
  return JSON.parse(stdout) as string[];
}

describe('CLI start-up', () => {
  it('loads the command tree and the library without the packages only some commands need', async () => {
    const loaded = await packagesAfter(
      `require(${JSON.stringify(path.join(DIST_SRC, 'cli', 'program.js'))}).buildProgram()`,
    );
    // What every command needs is there: the reading of the cache works.
    expect(loaded).toEqual(expect.arrayContaining(['commander', 'zod']));
    expect(loaded.filter((p) => LOADED_ON_USE.includes(p))).toEqual([]);
  });

  it('still loads each of them when a command needs it', async () => {
    const lib = JSON.stringify(path.join(DIST_SRC, 'index.js'));
    const loaded = await packagesAfter(`
      const s = require(${lib});
      process.env.DOCKER_HOST = 'unix:///nonexistent-h53.sock';
      await s.connectEngine().catch(() => {});
      await s.loadRecipe(${JSON.stringify(path.join(DIST_SRC, '..', '..', 'docker-defs', 'mpi4py-cpu'))});
      require(${JSON.stringify(path.join(DIST_SRC, 'recipe', 'lint.js'))}).lintDockerfile('FROM scratch\\n');
      require(${JSON.stringify(path.join(DIST_SRC, 'recipe', 'parsed-dockerfile.js'))}).parseDockerfile('FROM scratch\\n');
      require(${JSON.stringify(path.join(DIST_SRC, 'convert', 'sbom.js'))}).sbomDocument({ name: 'x' }, [{ type: 'deb', name: 'a', version: '1', source: 'dpkg' }], '0');
      await require(${JSON.stringify(path.join(DIST_SRC, 'sif', 'pgp.js'))}).readPgpKeyring('x').catch(() => {});
      s.octokitHost({ token: 'x' });
    `);
    expect(loaded).toEqual(expect.arrayContaining(LOADED_ON_USE));
  });
});
