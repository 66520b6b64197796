/**
 * The stage registry is complete whichever pipeline module Node loads
 * first. Under an import circle, loading a stage module first hands the
 * other one a half-initialised module, and stages silently go missing.
 * ts-jest compiles to CommonJS as tsc does, so each order here is the
 * order the built output would see (test/integration/package.test.ts
 * repeats this on the packed dist/).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

// The packages the stage modules load change nothing about the order of
// sifkit's own modules; stubbed, each of the orders below loads in
// milliseconds instead of seconds.
jest.mock('dockerode', () => ({}));
// A class to extend: pipeline/interrupt-logger.ts subclasses listr2's logger when it loads.
jest.mock('listr2', () => ({ ListrLogger: class {}, ListrLogLevels: {} }));
jest.mock('tar-stream', () => ({}));
// The others the stage modules build on when they load (zod schemas, a parser's classes) are
// real, loaded once and handed to every order: an isolated registry would load each again.
const mockShared = new Map<string, unknown>();
function mockActual(name: string): unknown {
  if (!mockShared.has(name)) mockShared.set(name, jest.requireActual(name));
  return mockShared.get(name);
}
jest.mock('zod', () => mockActual('zod'));
jest.mock('yaml', () => mockActual('yaml'));
jest.mock('openpgp', () => mockActual('openpgp'));
jest.mock('@cyclonedx/cyclonedx-library', () => mockActual('@cyclonedx/cyclonedx-library'));
jest.mock('dockerfile-ast', () => mockActual('dockerfile-ast'));
jest.mock('dockerfile-utils', () => mockActual('dockerfile-utils'));
jest.mock('packageurl-js', () => mockActual('packageurl-js'));
jest.mock('@octokit/rest', () => mockActual('@octokit/rest'));
jest.mock('@octokit/request-error', () => mockActual('@octokit/request-error'));
jest.mock('@octokit/plugin-retry', () => mockActual('@octokit/plugin-retry'));
jest.mock('@octokit/plugin-throttling', () => mockActual('@octokit/plugin-throttling'));

const PIPELINE = path.join(__dirname, '..', '..', 'src', 'pipeline');
const EXPECTED = ['render', 'build', 'archive', 'convert', 'test', 'stage', 'promote', 'retire'];

const modules = fs
  .readdirSync(PIPELINE)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => f.replace(/\.ts$/, ''));

describe('stage registry', () => {
  it('lists the stage modules it is tested against', () => {
    expect(modules).toEqual(expect.arrayContaining(['registry', 'stages', 'release-stages']));
  });

  it.each(modules)('holds every stage when %s loads first', (first) => {
    let names: string[] = [];
    jest.isolateModules(() => {
      require(path.join(PIPELINE, first));
      const { STAGES } = require(path.join(PIPELINE, 'registry'));
      names = Object.entries(STAGES as Record<string, { name: string } | undefined>)
        .filter(([, s]) => s !== undefined)
        .map(([k]) => k);
    });
    expect(names).toEqual(EXPECTED);
  });

  it('gives each stage under the name it has', () => {
    jest.isolateModules(() => {
      const { STAGES } = require(path.join(PIPELINE, 'registry'));
      for (const [k, s] of Object.entries(STAGES as Record<string, { name: string }>)) expect(s.name).toBe(k);
    });
  });
});
