/**
 * Every reader of a file format, fed random and mutated documents: the
 * result is a value or an InputError (exit 2) with a one-line message,
 * never another error, a stack or a hang; reading a tree never changes it.
 * Each property starts from a valid document and mutates it (a field
 * replaced by any JSON value, removed, the text cut short or spliced), so
 * the mutations reach past the first check. Seeded: SIFKIT_SEED=<n> repeats
 * a run; the seed is printed in every failure.
 */
import * as fc from 'fast-check';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { parseProfile } from '../../src/recipe/testing';
import { readResults } from '../../src/checks/results';
import { openDockerArchive } from '../../src/convert/archive';
import { InputError, fromSystemError } from '../../src/errors';
import { parsePipeline, type StageCatalog } from '../../src/pipeline/definition';
import { parseRecipe } from '../../src/recipe/schema';
import { inspectMetadata } from '../../src/convert/singularity';
import { inspectSifSync } from '../../src/sif/inspect';
import { writeSif } from '../../src/sif/file';
import { DataType } from '../../src/sif/format';
import { readAudit } from '../../src/tree/audit';
import { parseLedgerEntry, scanLedger } from '../../src/tree/ledger';
import { parsePolicy } from '../../src/tree/policy';
import { treeAt } from '../../src/tree/root';
import { treeStatus } from '../../src/tree/status';
import { verifyTree } from '../../src/tree/verify';
import { imageLabels, labelFacts } from '../../src/validate/labels';
import { tarBuffer } from '../support/archives';

/** Stages known by name only: nothing needed, nothing given. */
const stageNames = (...names: string[]): StageCatalog => Object.fromEntries(names.map((n) => [n, {}]));

const SEED = Number(process.env.SIFKIT_SEED ?? 20261201);
const RUNS = Number(process.env.SIFKIT_RUNS ?? 150);

function params(numRuns = RUNS): fc.Parameters<unknown> {
  return { seed: SEED, numRuns, endOnFailure: true };
}

async function check<T>(arb: fc.Arbitrary<T>, prop: (v: T) => Promise<void> | void, numRuns = RUNS): Promise<void> {
  try {
    await fc.assert(
      fc.asyncProperty(arb, async (v) => prop(v)),
      params(numRuns),
    );
  } catch (e) {
    // fast-check names the seed too; this line is there when its report is cut.
    const cause = (e as Error).cause as Error | undefined;
    throw new Error(
      `property failed with SIFKIT_SEED=${SEED}: ${(e as Error).message}${cause ? `\ncause: ${cause.stack ?? cause.message}` : ''}`,
    );
  }
}

/** Runs a reader: it may return or throw an InputError in one line; anything else fails the property. */
async function mustBeCalm(read: () => unknown): Promise<void> {
  try {
    await read();
  } catch (e) {
    if (!(e instanceof InputError)) throw new Error(`not an input error: ${(e as Error)?.stack ?? String(e)}`);
    expect(e.exitCode).toBe(2);
    expect(e.message).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(e.message.length).toBeLessThan(600);
  }
}

// ---- mutations of a JSON document ----

type Json = unknown;

/** All paths in a document, parents before children. */
function paths(v: Json, at: Array<string | number> = []): Array<Array<string | number>> {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function setAt(doc: Json, p: Array<string | number>, value: Json | typeof REMOVE): Json {
  if (!p.length) return value === REMOVE ? undefined : value;
  const copy: Json = structuredClone(doc);
  let cur = copy as Record<string | number, Json>;
  for (const k of p.slice(0, -1)) cur = cur[k] as Record<string | number, Json>;
  const last = p[p.length - 1];
  if (value === REMOVE) {
    if (Array.isArray(cur)) cur.splice(Number(last), 1);
    else delete cur[last];
  } else cur[last] = value;
  return copy;
}
const REMOVE = Symbol('remove');

/** A valid document with 1-3 fields replaced by arbitrary JSON or removed. */
function mutated(valid: Json): fc.Arbitrary<Json> {
  const all = paths(valid);
  const one = fc.tuple(
    fc.nat(all.length * 4),
    fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constant(REMOVE),
      fc.constantFrom(null, '', '../..', 'a/b', 'x\ny', [], {}, 3.1, -1),
    ),
  );
  return fc.array(one, { minLength: 1, maxLength: 3 }).map((ms) =>
    ms.reduce((doc, [i, value]) => {
      const ps = paths(doc);
      return ps.length ? setAt(doc, ps[i % ps.length], value) : doc;
    }, valid),
  );
}

/** The document's text mutated: cut short, or a random string spliced in. */
function mutatedText(text: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.nat(text.length).map((n) => text.slice(0, n)),
    fc.tuple(fc.nat(text.length), fc.string({ maxLength: 8 })).map(([n, s]) => text.slice(0, n) + s + text.slice(n)),
    fc.string({ maxLength: 200 }),
  );
}

/** Valid documents turned into text by `show`, mutated as data or as text. */
function variants(valid: Json, show: (v: Json) => string): fc.Arbitrary<string> {
  return fc.oneof(
    mutated(valid).map((d) => (d === undefined ? '' : show(d))),
    mutatedText(show(valid)),
  );
}

// ---- valid documents ----

const HASH = 'a'.repeat(64);
const STEM = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';
const NAME = `${STEM}-dockerhash-0123456789ab.sif`;

const RECIPE = {
  name: 'mpi4py',
  description: 'x',
  naming: {
    prefix: 'lumi',
    app: 'mpi4py',
    version: 'mpi4py',
    parts: [
      ['rocm', 'rocm'],
      ['python', 'python'],
      ['mpi4py', 'mpi4py'],
    ],
  },
  fragments: ['mpi4py/base.docker'],
  runtime_args: ['SERVER_PORT'],
  parameters: {
    rocm: { type: 'version', default: '6.2.0' },
    python: { type: 'enum', values: ['3.12', '3.10'], default: '3.12' },
    mpi4py: { type: 'version', default: '3.1.6', pattern: '[0-9.]+' },
    extras: { type: 'list', values: ['a', 'b'], default: ['a', 'b'] },
  },
  matrix: [{ rocm: '6.2.0' }],
  checks: [{ name: 'x', command: 'true' }],
  testing: { slurm: { partition: 'standard-g', sbatch: ['--exclusive'] } },
};

const POLICY = {
  directories: { 'tested-containers': { keep_newest: 2, series: ['stem', 'rocm-minor'], keep_younger_than_days: 14 } },
  pinned: [NAME],
  broken: [{ name: NAME, reason: 'bad' }],
  quarantine_days: 30,
  backup_command: 'cp {path} /backup',
};

const PIPELINE = { name: 'release', description: 'x', stages: ['render', { stage: 'promote', with: { to: 'all' } }] };

const LEDGER = {
  name: NAME,
  sha256: HASH,
  size: 10,
  stem: STEM,
  dockerhash: '0123456789ab',
  imageCreated: '2026-01-01T00:00:00Z',
  recipe: 'mpi4py',
  params: { rocm: '6.2.0' },
  labels: { 'io.sifkit.stem': STEM },
  stagedAt: '2026-01-01T00:00:00Z',
  stagedBy: 'root',
  hashed: { [`tested-containers/${NAME}`]: { size: 10, ino: 1, mtimeMs: 1, ctimeMs: 1 } },
  tests: [],
};

const RUN = {
  image: NAME,
  stem: STEM,
  dockerhash: '0123456789ab',
  recipe: 'mpi4py',
  runner: 'local',
  host: 'h',
  started: 'a',
  finished: 'b',
  passed: true,
  checks: [
    {
      name: 'c',
      outcome: 'passed',
      passed: true,
      exitCode: 0,
      durationMs: 1,
      tail: '',
      figures: { kind: 'latency', unit: 'us', points: [{ size: 1, value: 2 }] },
    },
  ],
};
const RESULTS = { image: NAME, runs: [RUN] };

const AUDIT = {
  time: 't',
  user: 'u',
  host: 'h',
  pid: 1,
  command: 'c',
  action: 'stage',
  files: [{ path: 'p', sha256: HASH, op: 'staged' }],
  outcome: 'ok',
};

const LABELS = {
  'io.sifkit.stem': STEM,
  'io.sifkit.dockerhash': '0123456789ab',
  'io.sifkit.image-id': `sha256:0123456789ab${'0'.repeat(52)}`,
  'io.sifkit.recipe': 'mpi4py',
  'io.sifkit.param.rocm': '6.2.0',
};

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-readers-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('the one-line formatter', () => {
  it('names file, field path, expected and found', () => {
    expect(() => parseRecipe(toYaml({ ...RECIPE, runtime_args: 'SERVER_PORT' }), '/d', 'recipe.yaml')).toThrow(
      /^recipe.yaml: runtime_args: expected a list, found the string "SERVER_PORT"$/,
    );
    expect(() =>
      parseRecipe(
        toYaml({
          ...RECIPE,
          parameters: { ...RECIPE.parameters, python: { type: 'enum', values: '3.12', default: '3.12' } },
        }),
        '/d',
        'recipe.yaml',
      ),
    ).toThrow(/^recipe.yaml: parameters.python.values: expected a list, found the string "3.12"$/);
    expect(() => parseLedgerEntry('', 'l.json', NAME)).toThrow(/^ledger record l.json: not valid JSON: /);
    expect(() => parseLedgerEntry('[]', 'l.json', NAME)).toThrow(
      /^ledger record l.json: \(the document\): expected a mapping, found a list of 0$/,
    );
    expect(() => parseLedgerEntry(JSON.stringify({ ...LEDGER, stem: '../x' }), 'l.json', NAME)).toThrow(
      /^ledger record l.json: stem: expected a valid stem name, found the string "..\/x"$/,
    );
    expect(() => parseLedgerEntry(JSON.stringify(LEDGER), 'l.json', 'other-dockerhash-0123456789ab.sif')).toThrow(
      /name: expected other-dockerhash-0123456789ab.sif/,
    );
  });

  it('escapes what a hostile label holds', () => {
    expect(() => imageLabels({ ...LABELS, 'io.sifkit.stem': 'a\nb\u001b[31m' }, 'x.sif')).toThrow(
      /^label io.sifkit.stem of x.sif: stem "a\\nb\\u001b\[31m" is not allowed; expected /,
    );
    expect(() => imageLabels({ ...LABELS, 'io.sifkit.dockerhash': '../../..' }, 'x.sif')).toThrow(
      /^label io.sifkit.dockerhash of x.sif: dockerhash "..\/..\/.." is not allowed/,
    );
    expect(() => imageLabels({ ...LABELS, 'io.sifkit.recipe': '/etc' }, 'x.sif')).toThrow(
      /^label io.sifkit.recipe of x.sif: recipe "\/etc" is not allowed/,
    );
    expect(() => imageLabels({ 'io.sifkit.dockerhash': '0123456789ab' }, 'x.sif')).toThrow(
      /x.sif carries no io.sifkit.stem label/,
    );
    expect(() => imageLabels({ ...LABELS, 'io.sifkit.image-id': `sha256:${'f'.repeat(64)}` }, 'x.sif')).toThrow(
      /is not the start of io.sifkit.image-id/,
    );
    expect(imageLabels(LABELS, 'x.sif')).toMatchObject({
      stem: STEM,
      dockerhash: '0123456789ab',
      recipe: 'mpi4py',
      params: { rocm: '6.2.0' },
    });
  });

  it('maps errno to one line with the path and the exit code of its kind', () => {
    const sys = (code: string, syscall: string, p: string) =>
      Object.assign(new Error(code), { code, syscall, path: p });
    for (const [code, exit] of [
      ['EACCES', 1],
      ['EROFS', 1],
      ['ENOSPC', 1],
      ['EISDIR', 2],
      ['ENOTDIR', 2],
      ['EEXIST', 2],
      ['ELOOP', 2],
    ] as const) {
      const e = fromSystemError(sys(code, 'open', '/some/where\nelse'));
      expect(e?.exitCode).toBe(exit);
      expect(e?.message).toMatch(new RegExp(`^cannot open "/some/where\\\\nelse": .+ \\(${code}\\)$`));
    }
    expect(fromSystemError(new Error('plain'))).toBeUndefined();
  });
});

describe('readers never crash on mutated input', () => {
  it('recipes', async () => {
    await check(
      variants(RECIPE, (d) => toYaml(d)),
      (text) => mustBeCalm(() => parseRecipe(text, '/defs/mpi4py', 'recipe.yaml')),
    );
  });

  it('retention policies', async () => {
    await check(
      variants(POLICY, (d) => toYaml(d)),
      (text) => mustBeCalm(() => parsePolicy(text, 'retention.yaml')),
    );
  });

  it('pipelines', async () => {
    await check(
      variants(PIPELINE, (d) => toYaml(d)),
      (text) => mustBeCalm(() => parsePipeline(text, 'release.yaml', stageNames('render', 'build', 'promote'))),
    );
  });

  it('test profiles', async () => {
    await check(mutated(RECIPE.testing), (doc) => mustBeCalm(() => parseProfile(doc, 'mpi4py')));
  });

  it('ledger records', async () => {
    await check(
      variants(LEDGER, (d) => JSON.stringify(d)),
      (text) => mustBeCalm(() => parseLedgerEntry(text, 'l.json', NAME)),
    );
  });

  it('sifkit labels', async () => {
    await check(mutated(LABELS), (doc) =>
      mustBeCalm(() => {
        labelFacts(doc, 'x.sif');
        return imageLabels(doc, 'x.sif');
      }),
    );
  });

  it('results files', async () => {
    const file = path.join(tmp, 'results.json');
    await check(
      variants(RESULTS, (d) => JSON.stringify(d)),
      async (text) => {
        await fs.writeFile(file, text);
        await mustBeCalm(() => readResults(file));
      },
    );
  });

  it('audit logs (a torn last line is left out)', async () => {
    const file = path.join(tmp, 'audit.log');
    await check(
      variants(AUDIT, (d) => JSON.stringify(d)),
      async (line) => {
        await fs.writeFile(file, `${JSON.stringify(AUDIT)}\n${line}\n${line.slice(0, 5)}`);
        await mustBeCalm(() => readAudit(file));
      },
    );
  });

  it('SIF metadata objects (labels, inspect-metadata.json, oci-config.json)', async () => {
    const file = path.join(tmp, 'x.sif');
    const meta = inspectMetadata('', LABELS, '#!/bin/sh\n', '#!/bin/sh\n');
    const doc = { meta, oci: { Env: ['PATH=/bin'], Cmd: ['sh'] }, labels: LABELS };
    await check(
      mutated(doc),
      async (d) => {
        const m = (d ?? {}) as { meta?: unknown; oci?: unknown; labels?: unknown };
        const obj = (name: string, dataType: number, v: unknown) => ({
          kind: 'data' as const,
          dataType,
          name,
          data: Buffer.from(v === undefined ? '' : JSON.stringify(v)),
        });
        await writeSif(file, [
          obj('inspect-metadata.json', DataType.genericJson, m.meta),
          obj('oci-config.json', DataType.genericJson, m.oci),
          obj('', DataType.labels, m.labels),
        ]);
        await mustBeCalm(() => {
          const s = inspectSifSync(file);
          return labelFacts(s.labels, file);
        });
      },
      60,
    );
  });

  it('docker archives (manifest.json and image config)', async () => {
    const file = path.join(tmp, 'x.tar');
    const doc = {
      manifest: [{ Config: 'c.json', RepoTags: ['x:1'], Layers: ['l0/layer.tar'] }],
      config: {
        architecture: 'amd64',
        created: 'x',
        config: { Env: ['PATH=/bin'], Cmd: ['sh'], Labels: LABELS },
        // The one (empty) layer's digest.
        rootfs: { diff_ids: ['sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'] },
      },
    };
    await check(
      mutated(doc),
      async (d) => {
        const m = (d ?? {}) as { manifest?: unknown; config?: unknown };
        const member = (name: string, v: unknown) => ({
          header: { name } as never,
          body: Buffer.from(v === undefined ? '' : JSON.stringify(v)),
        });
        await fs.writeFile(
          file,
          await tarBuffer([
            member('c.json', m.config),
            { header: { name: 'l0/layer.tar' } as never, body: Buffer.alloc(0) },
            member('manifest.json', m.manifest),
          ]),
        );
        await mustBeCalm(() => openDockerArchive(file));
      },
      60,
    );
  });
});

describe('reading a tree with damaged ledger records changes nothing', () => {
  it('status and verify report, never write', async () => {
    const root = path.join(tmp, 'tree');
    const tree = treeAt(root);
    for (const d of [tree.tested, tree.sifImages, tree.easybuild, tree.ledger]) await fs.mkdir(d, { recursive: true });
    const snapshot = async () => {
      const out: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const e of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
          const p = path.join(dir, e.name);
          if (e.isDirectory()) await walk(p);
          else out.push(`${path.relative(root, p)}=${await fs.readFile(p, 'utf8')}`);
        }
      };
      await walk(root);
      return out.join('\n');
    };
    await check(
      variants(LEDGER, (d) => JSON.stringify(d)),
      async (text) => {
        await fs.writeFile(path.join(tree.ledger, `${NAME}.json`), text);
        const before = await snapshot();
        const scan = await scanLedger(tree);
        expect(scan.entries.length + scan.damaged.length).toBe(1);
        for (const d of scan.damaged) expect(d.message).not.toMatch(/\n/);
        await treeStatus(tree);
        const problems = await verifyTree(tree);
        if (scan.damaged.length) expect(problems.some((p) => p.kind === 'ledger-damaged')).toBe(true);
        expect(await snapshot()).toBe(before);
      },
      80,
    );
  });
});
