/**
 * The shape of src/, as docs/architecture.md draws it: no import circle
 * (between modules or between folders), no import up the layer table, and
 * the pure modules free of effects. A new folder must be given a layer
 * here; a new exception must say why, and is a TODO.
 */
import * as path from 'node:path';
import {
  circles,
  graphOf,
  groupEdges,
  impurities,
  readGraph,
  rankOf,
  upwardEdges,
  type ImportGraph,
  type LayerTable,
} from '../support/import-graph';

const SRC = path.join(__dirname, '..', '..', 'src');

/** Lowest first; a module may import its own layer and those below. */
const LAYERS: LayerTable = [
  ['errors', 'validate', 'util', 'provenance', 'emit'], // base: the error hierarchy, the one name rule and containment, small helpers, sifkit's version, the one emitter per generated language
  ['recipe', 'sif', 'elf', 'squashfs'], // data formats: recipes and rendering, the SIF format, ELF files' dynamic facts, squashfs read in place
  ['engine', 'fileserver', 'compat', 'tree', 'sources', 'slurm'], // the image engine and its file server; host compatibility; the container tree; the source cache; the Slurm client
  ['checks', 'convert', 'easybuild', 'github'], // tests, conversion, EasyConfigs/modules/user pages, GitHub pull requests: over engine and tree
  ['pipeline'], // stages over the domain, the typed context, the runner
  ['index'], // the library's entry point
  ['cli'], // commands: flags, output, exit codes
];

/** Upward edges tolerated for now, each a TODO with its reason. None today: keep it so. */
const KNOWN_UPWARD: Record<string, string> = {};

/** Modules that take plain data and give plain data (or streams): no file system, processes, network, engine. */
const PURE = new Set([
  'errors',
  'emit/text',
  'emit/bash',
  'emit/lua',
  'emit/python',
  'emit/dockerfile',
  'emit/markdown',
  'emit/html',
  'emit/svg',
  'emit/sbatch',
  'emit/terminal',
  'validate/names',
  'validate/schema',
  'validate/labels',
  'validate/schemas/audit',
  'validate/schemas/build',
  'validate/schemas/config',
  'validate/schemas/docker',
  'validate/schemas/engine',
  'validate/schemas/ledger',
  'validate/schemas/quarantine',
  'validate/schemas/recipe',
  'validate/schemas/results',
  'validate/schemas/sif',
  'validate/schemas/trust',
  'validate/schemas/slurm',
  'validate/schemas/checks',
  'util/yaml',
  'util/tar-member',
  'slurm/answers',
  'recipe/types',
  'recipe/names',
  'recipe/params',
  'recipe/template',
  'recipe/render',
  'recipe/hash',
  'recipe/lint',
  'recipe/parsed-dockerfile',
  'recipe/schema',
  'recipe/dockerignore',
  'recipe/served',
  'recipe/fetches',
  'recipe/sources',
  'recipe/steps',
  'recipe/checks',
  'recipe/testing',
  'fileserver/roles',
  'sif/format',
  'sif/integrity',
  'sif/dsse',
  'elf/format',
  'elf/stream',
  'elf/ldcache',
  'squashfs/layout',
  'squashfs/inode',
  'squashfs/format',
  'compat/select',
  'compat/squash-files',
  'validate/schemas/host',
  'compat/binds',
  'compat/view',
  'compat/linker',
  'compat/mpi',
  'compat/check',
  'compat/versions',
  'compat/hwcaps',
  'engine/progress',
  'convert/squash-options',
  'convert/flatten',
  'convert/additions',
  'convert/singularity',
  'checks/gate',
  'checks/judge',
  'checks/osu',
  'checks/spec',
  'checks/profile',
  'checks/report',
  'tree/names',
  'tree/policy',
  'tree/retire-plan',
  'github/host',
  'github/pr-content',
  'github/pull-request',
  'pipeline/context',
  'pipeline/build-plan',
]);

/** Run-time imports that make a module effectful. */
const EFFECTS = new Set([
  'fs',
  'node:fs',
  'node:fs/promises',
  'child_process',
  'node:child_process',
  'node:net',
  'node:http',
  'node:https',
  'node:dgram',
  'node:tty',
  'node:os',
  'node:worker_threads',
  'dockerode',
  'listr2',
  '@octokit/rest',
  '@octokit/core',
  '@octokit/plugin-retry',
  '@octokit/plugin-throttling',
]);

/**
 * The CLI's imports past index.ts: a TAB's disk candidates, each module
 * loaded only when that candidate is asked for, so a TAB never loads the
 * whole library (more than a second).
 */
const TAB_DIRECT = [
  'cli/complete-sources -> recipe/list',
  'cli/complete-sources -> recipe/load',
  'cli/complete-sources -> tree/ledger-names',
  'cli/complete-sources -> tree/root',
  'cli/complete-sources -> validate/names',
];

/** Pure modules' imports of effectful ones tolerated for now (TODO each). */
const KNOWN_IMPURE: Record<string, string> = {};

describe('layering of src/', () => {
  const graph = readGraph(SRC);
  const modules = [...graph.edges.keys()];

  it('reads the whole tree', () => {
    expect(modules.length).toBeGreaterThan(50);
    expect(modules).toEqual(
      expect.arrayContaining(['index', 'errors', 'cli/main', 'pipeline/registry', 'validate/names']),
    );
  });

  it('gives every module a layer', () => {
    expect(modules.filter((m) => rankOf(LAYERS, m) === undefined)).toEqual([]);
  });

  it('has no import circle between modules', () => {
    const edges = new Map([...graph.edges].map(([k, es]) => [k, es.map((e) => e.to)]));
    expect(circles(edges)).toEqual([]);
  });

  it('has no import circle between folders', () => {
    expect(circles(groupEdges(graph))).toEqual([]);
  });

  it('has no import up the layer table but the known ones', () => {
    expect(upwardEdges(graph, LAYERS)).toEqual(Object.keys(KNOWN_UPWARD).sort());
  });

  it('keeps the base layer at the base: validate/ imports only errors, errors imports nothing of sifkit', () => {
    const bad = modules
      .filter((m) => m.startsWith('validate/') || m === 'errors')
      .flatMap((m) =>
        graph.edges
          .get(m)!
          .filter((e) => !(e.to === 'errors' || e.to.startsWith('validate/')))
          .map((e) => `${m} -> ${e.to}`),
      );
    expect(bad).toEqual([]);
    expect(graph.edges.get('errors')).toEqual([]);
  });

  it('keeps the pure modules pure but for the known exceptions', () => {
    for (const m of PURE) expect(modules).toContain(m);
    expect(impurities(graph, PURE, EFFECTS)).toEqual(Object.keys(KNOWN_IMPURE).sort());
  });

  it('lets nothing but the CLI import the CLI, and nothing import the library entry', () => {
    const into = (target: (id: string) => boolean) =>
      modules.flatMap((m) =>
        graph.edges
          .get(m)!
          .filter((e) => target(e.to))
          .map((e) => `${m} -> ${e.to}`),
      );
    expect(into((t) => t.startsWith('cli/')).filter((e) => !e.startsWith('cli/'))).toEqual([]);
    expect(into((t) => t === 'index').filter((e) => !e.startsWith('cli/'))).toEqual([]);
  });

  it('keeps the CLI a layer over the library: it reaches sifkit only through index.ts', () => {
    const cli = modules.filter((m) => m.startsWith('cli/'));
    const past = cli.flatMap((m) =>
      graph.edges
        .get(m)!
        .filter((e) => e.to !== 'index' && !e.to.startsWith('cli/'))
        .map((e) => `${m} -> ${e.to}`),
    );
    expect(past.filter((e) => !TAB_DIRECT.includes(e))).toEqual([]);
  });

  it('keeps a TAB small: the completion entry reaches only the commands it needs, never index.ts', () => {
    const reach = new Set<string>();
    const walk = (m: string): void => {
      if (reach.has(m)) return;
      reach.add(m);
      // A cache miss loads the whole program (complete-main -> program), once: that edge is not followed.
      for (const e of graph.edges.get(m)!) if (!(m === 'cli/complete-main' && e.to === 'cli/program')) walk(e.to);
    };
    walk('cli/complete-main');
    expect([...reach].filter((m) => m === 'index' || (m.startsWith('cli/') && !m.startsWith('cli/complete')))).toEqual(
      [],
    );
    expect(graph.edges.get('cli/main')!.map((e) => e.to)).toEqual(['cli/complete', 'cli/complete-main', 'cli/program']);
  });
});

describe('the layering checks themselves', () => {
  const g = (files: Record<string, string>): ImportGraph => graphOf(new Map(Object.entries(files)));
  const layers: LayerTable = [['util'], ['tree'], ['cli']];

  it('sees static, type-only, re-export, require and dynamic imports', () => {
    const graph = g({
      'cli/a.ts':
        "import { x } from '../tree/b';\nimport type { T } from '../util/c';\nexport { y } from './d';\nconst z = require('../tree/b');\nvoid import('../util/c');\nimport { type U } from '../util/c';\nimport * as fs from 'node:fs';",
      'tree/b.ts': '',
      'util/c.ts': '',
      'cli/d.ts': '',
    });
    expect(graph.edges.get('cli/a')).toEqual([
      { to: 'tree/b', typeOnly: false },
      { to: 'util/c', typeOnly: true },
      { to: 'cli/d', typeOnly: false },
      { to: 'tree/b', typeOnly: false },
      { to: 'util/c', typeOnly: false },
      { to: 'util/c', typeOnly: true },
    ]);
    expect(graph.external.get('cli/a')).toEqual([{ specifier: 'node:fs', typeOnly: false }]);
  });

  it('finds an upward edge and a circle', () => {
    const graph = g({ 'util/a.ts': "import { b } from '../tree/b';", 'tree/b.ts': "import { a } from '../util/a';" });
    expect(upwardEdges(graph, layers)).toEqual(['util/a -> tree/b']);
    expect(circles(new Map([...graph.edges].map(([k, es]) => [k, es.map((e) => e.to)])))).toEqual([
      ['tree/b', 'util/a'],
    ]);
    expect(circles(groupEdges(graph))).toEqual([['tree', 'util']]);
  });

  it('finds an effect in a pure module, directly or through an import, and forgives a type-only one', () => {
    const graph = g({
      'util/a.ts': "import { b } from './b';",
      'util/b.ts': "import { readFileSync } from 'node:fs';",
      'util/c.ts': "import type Docker from 'dockerode';\nimport type { B } from './b';",
    });
    expect(impurities(graph, new Set(['util/a', 'util/b', 'util/c']), new Set(['node:fs', 'dockerode']))).toEqual([
      'util/b -> node:fs',
    ]);
    expect(impurities(graph, new Set(['util/a', 'util/c']), new Set(['node:fs', 'dockerode']))).toEqual([
      'util/a -> util/b',
    ]);
  });

  it('refuses an import that names no module', () => {
    expect(() => g({ 'cli/a.ts': "import { x } from '../nowhere';" })).toThrow(
      'cli/a.ts: import ../nowhere names no module of the tree',
    );
  });
});
