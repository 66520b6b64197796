/**
 * The records the `--json` documents are built of (json-schemas.ts): a
 * variant as rendered, a build, a conversion, a test run and its gate, a
 * tree image, a compatibility report, and the small types they share.
 * Open objects, as every published document is.
 */
import { z } from 'zod';

export const o = z.looseObject;
export const str = z.string();
export const int = z.number().int();
export const count = z.number().int().nonnegative();
export const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
export const dockerhash = z.string().regex(/^[0-9a-f]{12}$/);
export const strings = z.record(z.string(), z.string());
export const ok = z.literal(true);
/** CycloneDX's own JSON Schema (the version sifkit writes), by its $id: the published schemas point at it. */
export const CYCLONEDX_SCHEMA_ID = 'http://cyclonedx.org/schema/bom-1.6.schema.json';
/** A CycloneDX document: checked here by its format, published as CycloneDX's schema (see schemaText). */
export const cyclonedx = o({ bomFormat: z.literal('CycloneDX'), specVersion: str }).describe('a CycloneDX SBOM');
/** A Slurm job of a release run, as jobs.json records it. */
export const job = o({ id: str, state: str, exitCode: str.optional(), log: str, attempt: int });
/** The tree lock as status and verify show it; null when the tree is not locked. */
export const lockState = o({
  owner: o({ host: str, pid: z.number(), user: str, command: str, since: str, token: str }).optional(),
  ageMs: z.number(),
  live: z.boolean(),
  why: str.optional(),
}).nullable();

const names = o({ stem: str, tag: str, easyconfig: str }).describe("LUMI's names for the variant");
export const rendered = o({
  recipe: str,
  parameters: strings,
  names,
  definitionHash: sha256,
  buildArgs: z.array(str),
  labels: strings,
  lintWarnings: z.array(z.unknown()),
  dockerfile: str,
});
export const buildRecord = o({
  imageId: str,
  dockerhash,
  tag: str.describe("the variant's tag, moved to the image its last build used"),
  imageTag: str.describe("this image's own tag, <variant tag>-dockerhash-<dockerhash>, which no later build moves"),
  definitionHash: sha256,
  size: count,
  durationMs: z.number().nonnegative(),
  reused: z.boolean(),
  logPath: str.optional(),
  accessLogPath: str.optional(),
  leakScan: o({
    layers: count,
    files: count,
    bytes: count,
    tools: count.describe('served tools found at their declared path with the served bytes'),
  })
    .optional()
    .describe('the leak scan of a new or newly scanned image'),
  engine: o({ version: str, apiVersion: str, imageBuiltWith: str.optional() }).describe(
    "the engine that built or holds the image, and the version that built it: what the SIF's provenance records",
  ),
  baseImages: z
    .array(o({ ref: str, imageId: str.optional() }))
    .describe("the definition's FROM images, each with the image ID it resolved to in that engine"),
});
export const convertRecord = o({
  out: str,
  backend: z.enum(['native', 'apptainer', 'singularity']),
  source: str,
  size: count,
  durationMs: z.number().nonnegative(),
  labels: strings.optional(),
  twoPassesBecause: str
    .optional()
    .describe('why the conversion took two passes, not one during the read of the layers'),
});
const checkResult = o({
  name: str,
  outcome: str,
  passed: z.boolean(),
  exitCode: int.nullable(),
  durationMs: z.number().nonnegative(),
  reason: str.optional(),
  tail: str,
});
export const regression = o({
  check: str,
  size: z.number(),
  kind: z.enum(['latency', 'bandwidth']),
  baseline: z.number(),
  // Null: a size the baseline measured and this run did not.
  value: z.number().nullable(),
  worseBy: z.number().nullable(),
});
const gate = o({
  verdict: z.enum(['passed', 'refused', 'off']),
  tolerance: z.number(),
  baseline: str.optional(),
  source: str.optional(),
  regressions: z.array(regression),
}).describe("the regression gate's verdict; absent when there was nothing to compare with");
export const testRun = o({
  image: str,
  stem: str,
  dockerhash: str,
  recipe: str,
  params: strings.optional(),
  runner: z.enum(['local', 'slurm']),
  host: str,
  started: str,
  finished: str,
  passed: z.boolean().describe('every check passed and the gate did not refuse'),
  checks: z.array(checkResult),
  gate: gate.optional(),
});
export const decision = o({
  dir: str,
  name: str,
  action: z.enum(['keep', 'retire', 'blocked']),
  rule: str,
  references: z.array(str),
  broken: str.optional(),
});
export const problem = o({ kind: str, path: str, message: str, repairable: z.boolean(), repaired: str.optional() });
export const image = o({
  name: str,
  stem: str,
  dockerhash: str,
  params: strings.describe('recipe parameters, named as the recipe names them'),
  dirs: z.array(str),
  links: z.array(str),
  size: count,
  ageDays: z.number().optional(),
  imageCreated: str.optional(),
  sha256: sha256.optional(),
  checksum: z.enum(['ok-cached', 'changed', 'unrecorded']),
  tests: count.optional(),
  test: z
    .enum(['passed', 'failed', 'refused'])
    .optional()
    .describe("the latest test run's verdict, as the tree's ledger records it"),
});

export const brk = o({
  kind: z.enum(['missing-library', 'missing-version']),
  file: str,
  fileFrom: z.enum(['image', 'host']),
  library: str,
  provider: str.optional(),
  providerFrom: z.enum(['image', 'host']).optional(),
  version: str.optional(),
  neededBy: str,
  roots: count,
  alsoWithoutHost: z.boolean(),
});
export const mpiFinding = o({
  library: str,
  host: o({ path: str, version: str }),
  image: o({ path: str, version: str }),
  level: z.enum(['major', 'full', 'strict']),
  ok: z.boolean(),
  why: str.optional(),
});
export const compatReport = o({
  image: str,
  host: o({ host: str, takenAt: str, glibc: str.nullable() }),
  glibc: str.nullable(),
  compatible: z.boolean(),
  mpiLevel: z.enum(['major', 'full', 'strict']),
  objects: count,
  hostLoaded: z.array(str),
  breaks: z.array(brk),
  mpi: z.array(mpiFinding),
  ldLibraryPath: z.array(str),
});
