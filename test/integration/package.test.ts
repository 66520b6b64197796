/**
 * sifkit as a library, as a user gets it: `npm pack` (its prepack step a
 * clean build), the tarball unpacked into a fresh project's node_modules
 * (offline: its dependencies are this checkout's node_modules, linked),
 * then `require('sifkit')` from plain Node and a strict type-check of a
 * small TypeScript file against the packed declarations. A second project
 * has only sifkit's dependencies and their own (no devDependencies of
 * sifkit), compiles a consumer without esModuleInterop and runs it. The
 * packed stage registry is also loaded in both orders, since that is
 * where a load-order bug showed first.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, realpathSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as ts from 'typescript';
import { runCli } from '../support/cli';
import { renderFor } from '../support/recipes';
import { makeSif } from '../support/sifs';

jest.setTimeout(240_000);

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const MODULES = realpathSync(path.join(ROOT, 'node_modules'));
const STAGES = ['render', 'build', 'archive', 'convert', 'test', 'stage', 'promote', 'retire'];
const STALE = 'stale-leftover.js';

let packs: string;
let tarball: string;
let packed: string[];

// Packed once for both projects, as `npm pack` does it: prepack builds afresh.
beforeAll(async () => {
  packs = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-packed-'));
  // A file the sources do not make: prepack's clean build must leave it out.
  await fs.mkdir(path.join(ROOT, 'dist', 'src'), { recursive: true });
  await fs.writeFile(path.join(ROOT, 'dist', 'src', STALE), 'module.exports = "stale";\n');
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', packs], {
    cwd: ROOT,
    maxBuffer: 16 << 20,
  });
  const info = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  tarball = path.join(packs, info[0].filename);
  packed = info[0].files.map((f) => f.path);
});
afterAll(() => fs.rm(packs, { recursive: true, force: true }));

describe('the packed package', () => {
  let dir: string;
  let consumer: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-pack-'));
    consumer = path.join(dir, 'consumer');
    const pkg = path.join(consumer, 'node_modules', 'sifkit');
    await fs.mkdir(pkg, { recursive: true });
    await run('tar', ['-xzf', tarball, '-C', pkg, '--strip-components=1']);
    await fs.symlink(MODULES, path.join(pkg, 'node_modules'));
    await fs.writeFile(
      path.join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, dependencies: { sifkit: '*' } }),
    );
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const node = (code: string) =>
    run(process.execPath, ['-e', code], {
      cwd: consumer,
      env: { ...process.env, SIFKIT_DEFS: '', SIFKIT_PIPELINES: '' },
    });

  it('ships the built library, its declarations and the shipped data, not tests or benches', () => {
    const main = require(path.join(ROOT, 'package.json')).main as string;
    expect(packed).toEqual(
      expect.arrayContaining([
        main,
        main.replace(/\.js$/, '.d.ts'),
        'dist/src/cli/main.js',
        // The command: it sees a closed stdout before node hides it (src/cli/stdio.ts).
        'bin/sifkit',
        'docker-defs/mpi4py/recipe.yaml',
        'pipelines/release.yaml',
      ]),
    );
    expect(packed.filter((p) => /^(test|bench|src)\/|^dist\/(test|bench)\//.test(p))).toEqual([]);
    // Built afresh by prepack: nothing left over from an older build, no source maps of sources not shipped.
    expect(packed.filter((p) => p.endsWith(STALE) || p.endsWith('.map') || p.endsWith('.tsbuildinfo'))).toEqual([]);
    expect(existsSync(path.join(ROOT, 'dist', 'src', STALE))).toBe(false);
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
    expect(got).toEqual({
      missing: [],
      inputError: [true, 2, 3],
      stem: here.names.stem,
      hash: here.definitionHash,
      from: path.join(consumer, 'node_modules', 'sifkit', 'dist', 'src', 'index.js'),
    });
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
    await fs.writeFile(
      path.join(consumer, 'use.ts'),
      `
import { render, build, convert, stage, promote, planRetirement, inspect, openTree, connectEngine, parsePolicy, InputError, type ImageEngine, type Plan, type RenderedVariant } from 'sifkit';

export async function release(signal: AbortSignal): Promise<Plan> {
  const r: RenderedVariant = await render('mpi4py-cpu', { values: { python: '3.11' } });
  const docker: ImageEngine = await connectEngine(signal);
  const built = await build(docker, { recipe: await (await import('sifkit')).loadRecipe('mpi4py-cpu'), rendered: r, logDir: '/tmp/logs', signal });
  const sif = await convert(\`docker-daemon:\${built.imageId}\`, '/tmp/x.sif', { signal, engine: docker });
  const labels: Record<string, string> = (await inspect(sif.out)).labels;
  const tree = await openTree('/tmp/tree', true);
  const staged = await stage(tree, sif.out, { signal });
  await promote(tree, staged.name, { to: 'all', signal });
  if (!labels['io.sifkit.stem']) throw new InputError('no-stem', 'unlabelled');
  return planRetirement(tree, { policy: parsePolicy('directories: {}\\n', 'inline') });
}

// The declarations are real types, not any: each misuse below must be an error.
// @ts-expect-error render takes an options object
void render('mpi4py-cpu', 5);
// @ts-expect-error promote's target is sif-images, easybuild-sif-images or all
void openTree('/t', false).then((t) => promote(t, 'x.sif', { to: 'elsewhere' }));
`,
    );
    await fs.writeFile(
      path.join(consumer, 'tsconfig.json'),
      JSON.stringify({
        // esModuleInterop (tsc --init's default): zod's own declarations default-import its locales.
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          esModuleInterop: true,
          module: 'commonjs',
          moduleResolution: 'node',
          target: 'ES2022',
          lib: ['ES2022'],
          types: ['node'],
          typeRoots: [path.join(MODULES, '@types')],
        },
        files: ['use.ts'],
      }),
    );
    const tsc = path.join(MODULES, 'typescript', 'bin', 'tsc');
    // tsc prints its errors on stdout and exits 2: the errors are the useful part of a failure.
    const out = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], { cwd: consumer }).then(
      (r) => r.stdout,
      (e: { stdout?: string; message: string }) => e.stdout || e.message,
    );
    const lines = out.split('\n').filter(Boolean);
    expect(lines.filter((l) => !l.startsWith('/'))).toEqual([]);
    // The engine is sifkit's own ImageEngine: no declaration it reaches names dockerode's types.
    expect(lines.filter((l) => /dockerode|docker-modem/.test(l))).toEqual([]);
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/sifkit\/dist\/src\/engine\/engine\.d\.ts$/)]));
  });
});

/**
 * What Node finds for `name` when required from the package in `from`:
 * node_modules of that directory and of each parent (a directory that is
 * itself named node_modules is skipped, as Node does).
 */
function locate(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') {
      const candidate = path.join(dir, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json'))) return realpathSync(candidate);
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * The packages a project gets by installing `roots`: each with its
 * dependencies, optional and peer dependencies (when installed), and
 * theirs; by the name it has at the top of node_modules. Packages nested
 * in another's node_modules come with that package's directory.
 */
function installedClosure(roots: Record<string, string>, from: string): Map<string, string> {
  const top = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (name: string, at: string, required: boolean) => {
    const dir = locate(name, at);
    if (!dir) {
      if (required) throw new Error(`${name}, needed from ${at}, is not installed`);
      return;
    }
    if (seen.has(dir)) return;
    seen.add(dir);
    if (dir === path.join(MODULES, name)) top.set(name, dir);
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >;
    for (const d of Object.keys(pkg.dependencies ?? {})) visit(d, dir, true);
    for (const d of Object.keys({ ...pkg.optionalDependencies, ...pkg.peerDependencies })) visit(d, dir, false);
  };
  for (const name of Object.keys(roots)) visit(name, from, true);
  return top;
}

/**
 * The consumer: README's "Use it as a library" example as it stands, so
 * the two cannot drift apart, and misuses the declarations must refuse.
 */
function consumerSource(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it as a library'));
  const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!example) throw new Error('README.md has no TypeScript example under "## Use it as a library"');
  return `${example}
// The declarations are real types, not any: each misuse must be an error.
export function misuses(): void {
  // @ts-expect-error render takes an options object
  void render('mpi4py-cpu', 5);
  // @ts-expect-error a plan needs a policy
  void openTree('/t', false).then((t) => planRetirement(t, {}));
  // The rest of the release is there, as functions.
  const steps: Array<(...args: never[]) => Promise<unknown>> = [build, convert, stage, promote];
  void steps;
}
`;
}

describe('the packed package in a project with only its dependencies', () => {
  let dir: string;
  let consumer: string;
  let root: string;
  const images: string[] = [];
  const modules = () => path.join(consumer, 'node_modules');
  // tsc prints its errors on stdout and exits 2: the errors are the useful part of a failure.
  const tsc = (project: string) =>
    run(process.execPath, [path.join(MODULES, 'typescript', 'bin', 'tsc'), '-p', project], { cwd: consumer }).then(
      (r) => r.stdout,
      (e: { stdout?: string; message: string }) => e.stdout || e.message,
    );
  /** The two tsc runs below, started together once the project is written: one core each. */
  let libcheck: Promise<string>;
  let compiled: Promise<string>;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-consumer-'));
    consumer = path.join(dir, 'consumer');
    await fs.mkdir(path.join(modules(), 'sifkit'), { recursive: true });
    await run('tar', ['-xzf', tarball, '-C', path.join(modules(), 'sifkit'), '--strip-components=1']);
    const sifkit = JSON.parse(await fs.readFile(path.join(modules(), 'sifkit', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    // sifkit's dependencies and the consumer's own @types/node; none of sifkit's devDependencies.
    const wanted = installedClosure({ ...sifkit.dependencies, '@types/node': '*' }, ROOT);
    for (const [name, from] of wanted) {
      await fs.mkdir(path.dirname(path.join(modules(), name)), { recursive: true });
      await fs.symlink(from, path.join(modules(), name));
    }
    await fs.writeFile(
      path.join(consumer, 'package.json'),
      JSON.stringify({
        name: 'consumer',
        private: true,
        dependencies: { sifkit: '*' },
        devDependencies: { '@types/node': '*' },
      }),
    );
    await fs.writeFile(path.join(consumer, 'use.ts'), consumerSource());
    // Strict, and no esModuleInterop: the declarations must not need it. Links are followed as
    // installed (preserveSymlinks), so nothing outside this project is found.
    const compilerOptions = {
      strict: true,
      esModuleInterop: false,
      allowSyntheticDefaultImports: false,
      skipLibCheck: true,
      preserveSymlinks: true,
      module: 'commonjs',
      moduleResolution: 'node',
      target: 'ES2022',
      lib: ['ES2022'],
      types: ['node'],
      outDir: 'out',
    };
    await fs.writeFile(path.join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['use.ts'] }));
    await fs.writeFile(
      path.join(consumer, 'tsconfig.libcheck.json'),
      JSON.stringify({ compilerOptions: { ...compilerOptions, skipLibCheck: false, noEmit: true }, files: ['use.ts'] }),
    );
    // A tree with two images of one stem, the older one for the plan to retire.
    root = path.join(dir, 'tree');
    await fs.mkdir(root);
    for (const [hash, created] of [
      ['0123456789ab', '2024-03-01T00:00:00Z'],
      ['ba9876543210', '2024-06-01T00:00:00Z'],
    ]) {
      const sif = path.join(dir, `${hash}.sif`);
      const made = await makeSif(sif, {
        stem: 'lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py',
        recipe: 'mpi4py-cpu',
        dockerhash: hash,
        created,
      });
      expect((await runCli(['stage', sif, '--untested', '--root', root])).code).toBe(0);
      images.push(made.name);
    }
    libcheck = tsc('tsconfig.libcheck.json');
    compiled = tsc('tsconfig.json');
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it("has none of sifkit's devDependencies", async () => {
    const dev = Object.keys(
      (
        JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
          devDependencies: Record<string, string>;
        }
      ).devDependencies,
    );
    expect(dev.filter((d) => d !== '@types/node' && existsSync(path.join(modules(), d)))).toEqual([]);
  });

  it('names in its declarations only modules whose types its dependencies bring', async () => {
    const pkgDir = path.join(modules(), 'sifkit');
    const deps = Object.keys(
      (
        JSON.parse(await fs.readFile(path.join(pkgDir, 'package.json'), 'utf8')) as {
          dependencies: Record<string, string>;
        }
      ).dependencies,
    );
    const named = new Set<string>();
    const todo = [path.join(pkgDir, 'dist', 'src', 'index.d.ts')];
    const read = new Set<string>();
    while (todo.length) {
      const file = todo.pop()!;
      if (read.has(file)) continue;
      read.add(file);
      // Import and export specifiers of the declarations, as TypeScript's own
      // scanner finds them: a pattern also matched `Snapshot['from']` and
      // the text up to the next quote.
      const text = await fs.readFile(file, 'utf8');
      const found = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
      for (const spec of found) {
        if (!spec.startsWith('.')) named.add(spec);
        else
          todo.push(
            ...[
              `${path.resolve(path.dirname(file), spec)}.d.ts`,
              path.resolve(path.dirname(file), spec, 'index.d.ts'),
            ].filter(existsSync),
          );
      }
    }
    // The scan finds what the declarations do name (zod's types are in the API).
    expect([...named]).toContain('zod');
    const packageOf = (spec: string) =>
      spec
        .split('/')
        .slice(0, spec.startsWith('@') ? 2 : 1)
        .join('/');
    const typesOf = (name: string) => `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;
    const ownTypes = (name: string) => {
      const pkg = JSON.parse(readFileSync(path.join(modules(), name, 'package.json'), 'utf8')) as {
        types?: string;
        typings?: string;
        exports?: unknown;
      };
      return Boolean(
        pkg.types ||
        pkg.typings ||
        existsSync(path.join(modules(), name, 'index.d.ts')) ||
        JSON.stringify(pkg.exports ?? '').includes('"types"'),
      );
    };
    const unprovided = [...named]
      .filter((spec) => !spec.startsWith('node:'))
      .map(packageOf)
      .filter((name) => !deps.includes(name) || (!ownTypes(name) && !deps.includes(typesOf(name))));
    expect(unprovided).toEqual([]);
  });

  it("has declarations that check clean without esModuleInterop, the dependencies' own included but zod's", async () => {
    // zod's own declarations default-import its locales, which needs esModuleInterop when a
    // project checks libraries (skipLibCheck false); that is zod's, and only zod's, to mend.
    const errors = (await libcheck).split('\n').filter((l) => /error TS\d+/.test(l));
    expect(errors.filter((l) => !l.startsWith('node_modules/zod/'))).toEqual([]);
  });

  it('compiles a strict consumer without esModuleInterop, which renders the example recipe and plans a retirement for real', async () => {
    expect(await compiled).toBe('');
    const ran = await run(process.execPath, ['--preserve-symlinks', path.join('out', 'use.js'), root], {
      cwd: consumer,
      env: { ...process.env, SIFKIT_DEFS: '', SIFKIT_PIPELINES: '' },
    }).then(
      (r) => r.stdout,
      (e: { stdout?: string; stderr?: string; message: string }) => `${e.stdout ?? ''}${e.stderr || e.message}`,
    );
    const here = await renderFor('mpi4py-cpu', { python: '3.11' });
    const [first, ...decisions] = ran.trim().split('\n');
    expect(first).toBe(`${here.names.stem} ${here.definitionHash}`);
    expect(decisions.sort()).toEqual([`keep tested-containers ${images[1]}`, `retire tested-containers ${images[0]}`]);
  });
});
