/**
 * sifkit as a library, as a user gets it: `npm pack`, the tarball
 * unpacked into a fresh project's node_modules (offline: its dependencies
 * are this checkout's node_modules, linked), then `require('sifkit')` from
 * plain Node and a strict type-check of a small TypeScript file against the
 * packed declarations. The packed stage registry is also loaded in both
 * orders, since that is where a load-order bug showed first.
 */
import { execFile } from 'node:child_process';
import { promises as fs, realpathSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { renderFor } from '../support/recipes';

jest.setTimeout(240_000);

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const MODULES = realpathSync(path.join(ROOT, 'node_modules'));
const STAGES = ['render', 'build', 'archive', 'convert', 'test', 'stage', 'promote', 'retire'];

describe('the packed package', () => {
  let dir: string;
  let consumer: string;
  let packed: string[];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-pack-'));
    // What npm test's pretest does; here too, so this file alone packs what the sources say.
    await run('npm', ['run', 'build', '--silent'], { cwd: ROOT });
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT });
    const info = JSON.parse(stdout)[0] as { filename: string; files: Array<{ path: string }> };
    packed = info.files.map((f) => f.path);
    consumer = path.join(dir, 'consumer');
    const pkg = path.join(consumer, 'node_modules', 'sifkit');
    await fs.mkdir(pkg, { recursive: true });
    await run('tar', ['-xzf', path.join(dir, info.filename), '-C', pkg, '--strip-components=1']);
    await fs.symlink(MODULES, path.join(pkg, 'node_modules'));
    await fs.writeFile(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, dependencies: { sifkit: '*' } }));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const node = (code: string) => run(process.execPath, ['-e', code], { cwd: consumer, env: { ...process.env, SIFKIT_DEFS: '', SIFKIT_PIPELINES: '' } });

  it('ships the built library, its declarations and the shipped data, not tests or benches', () => {
    const main = require(path.join(ROOT, 'package.json')).main as string;
    expect(packed).toEqual(expect.arrayContaining([main, main.replace(/\.js$/, '.d.ts'), 'dist/src/cli/main.js', 'docker-defs/mpi4py/recipe.yaml', 'pipelines/release.yaml']));
    expect(packed.filter((p) => /^(test|bench|src)\/|^dist\/(test|bench)\//.test(p))).toEqual([]);
  });

  it("imports from plain Node with require('sifkit') and renders from the packed recipes", async () => {
    const { stdout } = await node(`
      const s = require('sifkit');
      const fns = ['render', 'build', 'convert', 'stage', 'promote', 'planRetirement', 'retire', 'inspect', 'openTree', 'runTests', 'loadRecipe'];
      const e = new s.InputError('x', 'bad');
      s.render('mpi4py-cpu', { values: { python: '3.11' }, date: '20241007' }).then((r) => {
        console.log(JSON.stringify({
          missing: fns.filter((f) => typeof s[f] !== 'function'),
          inputError: [e instanceof s.SifkitError, e.exitCode, s.ExitCode.refused],
          stem: r.names.stem, hash: r.definitionHash, from: require.resolve('sifkit'),
        }));
      });
    `);
    const got = JSON.parse(stdout);
    const here = await renderFor('mpi4py-cpu', { python: '3.11' });
    expect(got).toEqual({ missing: [], inputError: [true, 2, 3], stem: here.names.stem, hash: here.definitionHash, from: path.join(consumer, 'node_modules', 'sifkit', 'dist', 'src', 'index.js') });
  });

  it('refuses bad input through the library with an InputError, not a crash', async () => {
    const { stdout } = await node(`
      require('sifkit').render('mpi4py-cpu', { values: { nosuch: '1' } }).then(() => console.log('resolved'), (e) => console.log(e.constructor.name, e.exitCode, e.message));
    `);
    expect(stdout.trim()).toBe('InputError 2 unknown parameter nosuch for recipe mpi4py-cpu');
  });

  it.each([
    ['release-stages', 'registry'],
    ['stages', 'registry'],
    ['registry', 'release-stages'],
  ])('has every stage in the built registry when %s loads before %s', async (first, second) => {
    const { stdout } = await node(`
      require('sifkit/dist/src/pipeline/${first}');
      require('sifkit/dist/src/pipeline/${second}');
      const { STAGES } = require('sifkit/dist/src/pipeline/registry');
      console.log(JSON.stringify(Object.keys(STAGES).filter((k) => STAGES[k])));
    `);
    expect(JSON.parse(stdout)).toEqual(STAGES);
  });

  it('type-checks a strict TypeScript file against the packed declarations', async () => {
    await fs.writeFile(path.join(consumer, 'use.ts'), `
import { render, build, convert, stage, promote, planRetirement, inspect, openTree, connectEngine, parsePolicy, InputError, type ImageEngine, type Plan, type RenderedVariant } from 'sifkit';

export async function release(signal: AbortSignal): Promise<Plan> {
  const r: RenderedVariant = await render('mpi4py-cpu', { values: { python: '3.11' } });
  const docker: ImageEngine = await connectEngine(signal);
  const built = await build(docker, { recipe: await (await import('sifkit')).loadRecipe('mpi4py-cpu'), rendered: r, logDir: '/tmp/logs', signal });
  const sif = await convert(\`docker-daemon:\${built.imageId}\`, '/tmp/x.sif', { signal, engine: docker });
  const labels: Record<string, string> = (await inspect(sif.out)).labels;
  const tree = await openTree('/tmp/tree', true);
  const staged = await stage(tree, sif.out, { signal, requireTests: false });
  await promote(tree, staged.name, { to: 'all', signal });
  if (!labels['io.sifkit.stem']) throw new InputError('no-stem', 'unlabelled');
  return planRetirement(tree, { policy: parsePolicy('directories: {}\\n', 'inline') });
}

// The declarations are real types, not any: each misuse below must be an error.
// @ts-expect-error render takes an options object
void render('mpi4py-cpu', 5);
// @ts-expect-error promote's target is sif-images, easybuild-sif-images or all
void openTree('/t', false).then((t) => promote(t, 'x.sif', { to: 'elsewhere' }));
`);
    await fs.writeFile(path.join(consumer, 'tsconfig.json'), JSON.stringify({
      // esModuleInterop (tsc --init's default): zod's own declarations default-import its locales.
      compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, esModuleInterop: true, module: 'commonjs', moduleResolution: 'node', target: 'ES2022', lib: ['ES2022'], types: ['node'], typeRoots: [path.join(MODULES, '@types')] },
      files: ['use.ts'],
    }));
    const tsc = path.join(MODULES, 'typescript', 'bin', 'tsc');
    // tsc prints its errors on stdout and exits 2: the errors are the useful part of a failure.
    const out = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], { cwd: consumer }).then((r) => r.stdout, (e: { stdout?: string; message: string }) => e.stdout || e.message);
    const lines = out.split('\n').filter(Boolean);
    expect(lines.filter((l) => !l.startsWith('/'))).toEqual([]);
    // The engine is sifkit's own ImageEngine: no declaration it reaches names dockerode's types.
    expect(lines.filter((l) => /dockerode|docker-modem/.test(l))).toEqual([]);
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/sifkit\/dist\/src\/engine\/engine\.d\.ts$/)]));
  });
});
