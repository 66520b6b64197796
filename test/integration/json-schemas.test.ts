/**
 * Every `--json` document has a published JSON Schema in docs/schemas/,
 * and the real output of each command matches it: run here against a tiny
 * recipe (busybox, one variant), a small made SIF, a local fake GitHub.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { removeTestImages, writeTinyRecipe } from '../support/engine';
import { makeSif } from '../support/sifs';
import { genTree, series } from '../support/gentree';
import { FakeGitHub } from '../support/github-server';
import { JSON_DOCUMENTS, schemaFileName, schemaText, type DocumentName } from '../../src/cli/json-schemas';

jest.setTimeout(600_000);

const DOCS = path.join(__dirname, '..', '..', 'docs', 'schemas');
const seen = new Set<DocumentName>();

/** Runs a command with --json and checks its one document against the schema. */
async function doc(
  name: DocumentName,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; code?: number } = {},
) {
  const r = await runCli([...args, '--json'], { cwd: opts.cwd, env: opts.env });
  if (r.code !== (opts.code ?? 0)) throw new Error(`sifkit ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  const value = JSON.parse(r.stdout);
  const parsed = JSON_DOCUMENTS[name].safeParse(value);
  if (!parsed.success)
    throw new Error(
      `sifkit ${args.join(' ')} --json does not match ${schemaFileName(name)}:\n${JSON.stringify(parsed.error.issues, null, 2)}`,
    );
  seen.add(name);
  return value;
}

describe('JSON Schemas of the --json documents', () => {
  it('docs/schemas holds exactly the current schemas (npm run schemas writes them)', async () => {
    const files = (await fs.readdir(DOCS)).filter((f) => f.endsWith('.schema.json')).sort();
    expect(files).toEqual(
      Object.keys(JSON_DOCUMENTS)
        .map((n) => schemaFileName(n as DocumentName))
        .sort(),
    );
    for (const name of Object.keys(JSON_DOCUMENTS) as DocumentName[]) {
      expect(await fs.readFile(path.join(DOCS, schemaFileName(name)), 'utf8')).toBe(schemaText(name));
    }
  });

  describe('real output matches', () => {
    let dir: string;
    let sif: string;
    let sifName: string;
    let tag: string;
    const gh = new FakeGitHub('lumi', 'contrib', 'ghp_schemaTestToken0123456789abcdef', { 'README.md': 'x\n' });
    beforeAll(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-schemas-'));
      await writeTinyRecipe(dir);
      await gh.start();
    });
    afterAll(async () => {
      await gh.stop();
      await removeTestImages();
      await fs.rm(dir, { recursive: true, force: true });
    });

    it('render, render --matrix and the error document', async () => {
      await doc('render', ['render', 'mpi4py', '--date', '20241007']);
      await doc('render-matrix', ['render', 'mpi4py', '--matrix']);
      // The example's declared source (shipped beside its recipe): copied into a cache of the test's own.
      await doc('fetch', ['fetch', 'mpi4py-cpu', '--cache', path.join(dir, 'sources')]);
      const plan = await doc('release-dry-run', ['release', 'mpi4py-cpu', '--matrix', '--dry-run', '--engines', 'a,b']);
      expect(plan.plan.executed).toBe(plan.plan.distinct);
      const e = await doc('error', ['render', 'mpi4py', '--set', 'rocmm=1'], { code: 2 });
      expect(e.error.code).toBeTruthy();
    });

    it('release, build, convert, inspect, test, report of a tiny recipe', async () => {
      const recipe = path.join(dir, 'defs', 'tiny');
      await doc('init', ['init', 'tree'], { cwd: dir });
      const rel = await doc(
        'release',
        ['release', recipe, '--root', 'tree', '--out', 'sif', '--results-dir', 'results', '--log-dir', 'logs'],
        { cwd: dir },
      );
      tag = rel.variants[0].image;
      const b = await doc('build', ['build', recipe, '--log-dir', 'logs'], { cwd: dir });
      expect(b.images[0].reused).toBe(true);
      sif = path.join(dir, 'one.sif');
      await doc('convert', ['convert', `docker-daemon:${tag}`, '-o', sif], { cwd: dir });
      await doc('inspect', ['inspect', sif]);
      // Signed with sylabs' test key (BSD-3 fixture) in a 0600 copy; verify-conversion still holds for the signed SIF.
      const key = path.join(dir, 'sign.pem');
      await fs.copyFile(path.join(__dirname, '..', 'fixtures', 'sylabs', 'ed25519-private.pem'), key);
      await fs.chmod(key, 0o600);
      await doc('sign', ['sign', sif, '--key', key]);
      await doc('verify-signature', [
        'verify-signature',
        sif,
        '--key',
        path.join(__dirname, '..', 'fixtures', 'sylabs', 'ed25519-public.pem'),
      ]);
      await doc('verify-conversion', ['verify-conversion', sif]);
      await doc('test', ['test', tag, '--runner', 'local', '--recipe', recipe, '--results-dir', 'results2'], {
        cwd: dir,
      });
      await doc('report', ['report', '--results-dir', 'results2', '--out', 'report'], { cwd: dir });
    });

    it('stage, promote, status, verify, retire, purge, restore on a tree', async () => {
      const made = path.join(dir, 'made.sif');
      const rendered = JSON.parse((await runCli(['render', 'mpi4py', '--json'])).stdout);
      ({ name: sifName } = await makeSif(made, {
        stem: rendered.names.stem,
        recipe: 'mpi4py',
        params: rendered.parameters,
        env: ['WITH_CONDA=true', 'PATH=/usr/bin'],
        labels: { 'io.sifkit.definition-hash': rendered.definitionHash },
      }));
      const root = path.join(dir, 'tree2');
      await fs.mkdir(root);
      await doc('stage', ['stage', made, '--untested', '--root', root]);
      await doc('promote', ['promote', sifName, '--to', 'all', '--root', root]);
      const st = await doc('status', ['status', '--root', root, '--where', `rocm=${rendered.parameters.rocm}`]);
      expect(st.images).toHaveLength(1);
      await doc('verify', ['verify', '--root', root]);
      await doc('retire', ['retire', '--root', root]);
      await doc('retire-purge', ['retire', '--purge', '--root', root]);
      await doc('error', ['restore', '0123456789ab', '--root', root], { code: 2 });
      // An image in the tree already: nothing to restore, exit 0 (a restore run again after a stop ends so).
      expect(await doc('restore', ['restore', sifName, '--root', root])).toMatchObject({ already: true });
    });

    it('restore after a retire --apply', async () => {
      // Four of one stem, all old: the policy keeps the newest two in tested-containers.
      const root = path.join(dir, 'tree3');
      await genTree(
        root,
        series('sifkittest-tiny-v-1.0', '6.2.0', 4, 400, 'c').map((i) => ({
          ...i,
          dirs: ['tested-containers' as const],
        })),
      );
      const r = await doc('retire', ['retire', '--apply', '--root', root]);
      const gone = r.decisions.filter((d: { action: string }) => d.action === 'retire');
      expect(gone).toHaveLength(2);
      await doc('restore', ['restore', gone[0].name, '--root', root]);
    });

    it('easyconfig, module and publish of a staged image', async () => {
      const root = path.join(dir, 'tree2');
      await doc('easyconfig', [
        'easyconfig',
        sifName,
        '--root',
        root,
        '--date',
        '20241007',
        '--out',
        path.join(dir, 'eb'),
      ]);
      await doc('module', ['module', sifName, '--root', root, '--date', '20241007', '--out', path.join(dir, 'mod')]);
      await doc(
        'publish',
        ['publish', sifName, '--repo', 'lumi/contrib', '--root', root, '--date', '20241007', '--api-url', gh.url],
        { env: { GITHUB_TOKEN: gh.token } },
      );
    });

    it('host snapshot, host record, compat and compat --root', async () => {
      const root = path.join(dir, 'tree2');
      const snap = path.join(dir, 'host.json');
      await fs.writeFile(
        snap,
        JSON.stringify(
          await doc('host-snapshot', [
            'host',
            'snapshot',
            '--bind',
            '/usr/lib/x86_64-linux-gnu/libz.so.1,/nonexistent:/opt/x',
          ]),
        ),
      );
      await doc('host-record', ['host', 'record', snap, '--name', 'here', '--root', root]);
      const one = await doc('compat', ['compat', sif, '--host', snap]);
      expect(one.reports).toHaveLength(1);
      const all = await doc('compat-tree', ['compat', '--root', root, '--host', snap]);
      expect(all.images.map((i: { name: string }) => i.name)).toEqual([sifName]);
    });

    it('covered every document', () => {
      // jobs needs a release through Slurm: test/integration/slurm-release.test.ts checks its document.
      expect([...seen].sort()).toEqual(
        Object.keys(JSON_DOCUMENTS)
          .filter((n) => n !== 'jobs')
          .sort(),
      );
    });
  });
});
