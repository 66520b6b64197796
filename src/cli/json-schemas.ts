/**
 * The published shape of every `--json` document, one per command, as zod
 * schemas; docs/schemas/<name>.schema.json is their JSON Schema
 * (`npm run schemas` writes them, a test checks they are current and that
 * real output matches). Objects are open (extra properties allowed): a
 * reader must ignore fields it does not know, so adding one is not a
 * breaking change; removing or retyping one is, and the tests catch it.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { hostSnapshotSchema, provenanceDocSchema } from '../index';

// The records the documents are built of live in json-records.ts; this file is the documents, one per command.
import {
  o,
  str,
  int,
  count,
  sha256,
  dockerhash,
  strings,
  ok,
  CYCLONEDX_SCHEMA_ID,
  cyclonedx,
  job,
  lockState,
  rendered,
  buildRecord,
  convertRecord,
  regression,
  testRun,
  decision,
  problem,
  image,
  brk,
  mpiFinding,
  compatReport,
} from './json-records';

export { CYCLONEDX_SCHEMA_ID };

/** The document a failing command prints with --json. */
export const errorDocument = o({ ok: z.literal(false), error: o({ code: str, message: str, hint: str.optional() }) });

/** Each command's success document (failures print `errorDocument`). */
export const JSON_DOCUMENTS = {
  render: rendered.extend({ ok }),
  'render-matrix': o({ ok, variants: z.array(rendered) }),
  build: o({ ok, images: z.array(buildRecord) }),
  fetch: o({
    ok,
    cache: str,
    sources: z.array(
      o({
        name: str,
        kind: z.enum(['file', 'git', 'local']),
        url: str,
        sha256: sha256.optional(),
        commit: str.optional(),
        file: str,
        servedPath: str,
        bytes: count,
        how: z.enum(['cached', 'fetched', 'copied']),
        requests: count,
        resumedFrom: count,
      }),
    ),
  }),
  convert: o({
    ok,
    sif: convertRecord,
    attested: o({
      sif: str,
      ids: z.array(int).optional(),
      already: z.boolean(),
      packages: count.optional(),
      notes: z.array(str),
      signature: z.unknown().optional(),
    }).optional(),
  }),
  inspect: o({
    ok,
    file: str,
    size: count,
    arch: str,
    uuid: str,
    created: z.number(),
    objects: z.array(o({ id: int, type: str, name: str, offset: count, size: count, group: int })),
    deffile: str.optional(),
    labels: strings,
    environment: strings,
    runscript: str.optional(),
    partition: o({
      offset: count,
      size: count,
      fsType: int,
      arch: str,
      squashfsMagic: z.boolean(),
      compression: str.optional(),
    }).optional(),
    sbom: o({
      format: str,
      components: z.array(o({ name: str, version: str.optional(), purl: str.optional() })),
      document: cyclonedx.optional().describe('the whole SBOM, as the SIF holds it'),
    }).optional(),
    provenance: provenanceDocSchema.optional(),
  }),
  stage: o({
    ok,
    staged: o({
      name: str,
      path: str,
      sha256,
      size: count,
      already: z.boolean(),
      archive: str.optional(),
      linked: z.boolean().describe('entered the tree by hard link (release staging its --out copy), not a copy'),
    }),
  }),
  promote: o({
    ok,
    promoted: o({
      name: str,
      link: o({ path: str, target: str, previous: str.optional(), changed: z.boolean() }).optional(),
      easybuild: o({ path: str, how: z.enum(['hardlink', 'copy', 'present']) }).optional(),
      testedSignature: str.optional(),
    }),
  }),
  init: o({ ok, root: str, created: z.boolean().describe('false when a tree was already there') }),
  status: o({
    ok,
    lock: lockState,
    root: str,
    images: z.array(image),
    links: z.array(o({ name: str, target: str, image: str.optional(), dangling: z.boolean() })),
    trustPolicy: str.optional(),
  }),
  verify: o({
    ok: z.boolean(),
    problems: z.array(problem),
    lock: lockState,
    reconverted: z
      .array(
        o({
          path: str,
          source: str.optional(),
          result: z.enum(['identical', 'differs', 'source unavailable']),
          detail: str.optional(),
        }),
      )
      .optional(),
  }),
  retire: o({
    ok: z.boolean(),
    applied: z.boolean(),
    decisions: z.array(decision),
    archive: z.array(o({ from: str, to: str, for: str })),
    links: z.array(o({ link: str, from: str, to: str.optional(), for: str })),
  }),
  'retire-purge': o({
    ok: z.boolean(),
    deleted: z.array(str),
    kept: z.array(o({ name: str, kind: z.enum(['grace', 'backup-failed']), why: str })),
  }),
  restore: o({ ok, restored: str, already: z.boolean().optional() }),
  test: o({
    ok: z.boolean(),
    run: testRun,
    resultsFile: str,
    baseline: o({ image: str, source: str }).optional(),
    regressions: z.array(regression),
    recordedInTree: z.boolean(),
  }),
  report: o({ ok, report: str, runs: count }),
  easyconfig: o({ ok, dir: str, files: z.array(str), module: str }),
  module: o({ ok, modulefile: str, installdir: str, module: str }),
  publish: o({
    ok,
    branch: str,
    commit: str,
    committed: z.boolean(),
    pr: o({ number: int, url: str, created: z.boolean() }),
  }),
  release: o({
    ok: z.boolean(),
    pipeline: str,
    recipe: str,
    root: str.optional(),
    variants: z.array(
      o({
        stem: str.optional(),
        values: strings,
        dockerhash: dockerhash.optional(),
        image: str.optional(),
        sif: str.optional(),
        stages: strings,
        error: str.optional(),
      }),
    ),
  }),
  'release-dry-run': o({
    ok,
    recipe: str,
    dryRun: ok,
    plan: o({
      variants: z.array(
        o({
          index: count,
          engine: str.describe("the engine's address; '' for the default one"),
          steps: count,
          shared: count.describe("steps the engine's layer cache holds when it builds: an earlier variant's or cached"),
          cached: count.describe("of those, the steps the engine's cache held before the run"),
          heavy: count.describe('RUN/COPY/ADD steps its build runs (its own that its engine does not hold then)'),
          after: count.optional().describe('the variant whose build holds the shared steps: built first'),
          move: o({
            from: str.describe('the engine that holds the image'),
            image: str.describe("the image's ID"),
            ref: str.describe('what it is saved by: its own tag, else its ID'),
            steps: count.describe("the variant's steps it brings"),
            heavy: count.describe('of them, RUN/COPY/ADD'),
          })
            .optional()
            .describe("an image another engine holds, moved to the variant's engine (save/load) before its build"),
        }),
      ),
      engines: z.array(
        o({
          engine: str,
          variants: z.array(count),
          run: count,
          heavy: count,
          cached: count.describe("steps of the matrix the engine's cache held before the run"),
          moved: count.describe('steps of the matrix it takes from images moved to it, not run'),
        }),
      ),
      steps: count,
      distinct: count,
      distinctHeavy: count,
      executed: count,
      executedHeavy: count,
      served: o({
        digest: str.optional().describe('the served digest every build passes as SERVED_DIGEST'),
        port: count.optional().describe('the port it derives, passed as SERVER_PORT'),
        assumed: str
          .optional()
          .describe('what the plan assumed where it could not read the served directory (none named, or unreadable)'),
      }).describe("the run's served files, by which the steps after ARG SERVER_PORT and SERVED_DIGEST are keyed"),
      stems: z.array(str),
    }),
  }),
  jobs: o({
    ok,
    file: str,
    recipe: str,
    cancelled: z.array(str),
    variants: z.array(
      o({
        stem: str,
        sif: str,
        archive: str,
        dockerhash,
        imageId: str,
        tag: str,
        phase: str,
        convert: job.optional(),
        test: job.extend({ workdir: str }).optional(),
      }),
    ),
  }),
  sign: o({
    ok,
    file: str,
    group: int,
    format: z.enum(['dsse', 'pgp']),
    signers: z.array(str),
    id: int.optional(),
    alreadySigned: z.boolean(),
    objects: z.array(int),
  }),
  'verify-signature': o({
    ok,
    file: str,
    groups: z.array(
      o({
        group: int,
        objects: z.array(int),
        verified: z.boolean(),
        signatures: z.array(
          o({
            id: int,
            group: int,
            format: z.enum(['dsse', 'pgp', 'unknown']),
            signers: z.array(str),
            problems: z.array(str),
          }),
        ),
      }),
    ),
    ungrouped: z
      .array(o({ id: int, name: str }))
      .describe('objects in no group, so covered by no signature: the file is then not verified'),
  }),
  'verify-conversion': o({
    ok,
    sif: str,
    source: str,
    imageId: str.optional(),
    identical: z.boolean(),
    size: z.tuple([count, count]),
    differing: count,
    firstDifference: count.optional(),
  }),
  'host-snapshot': hostSnapshotSchema,
  'host-record': o({ ok, recorded: o({ name: str, path: str, replaced: z.boolean() }) }),
  compat: o({ ok: z.boolean(), reports: z.array(compatReport) }),
  'compat-tree': o({
    ok: z.boolean(),
    root: str,
    hosts: z.array(str),
    images: z.array(
      o({
        name: str,
        path: str,
        links: z.array(str),
        easyconfigs: z.array(str),
        sameAs: str.optional(),
        error: str.optional(),
        results: z.array(o({ host: str, compatible: z.boolean(), breaks: z.array(brk), mpi: z.array(mpiFinding) })),
      }),
    ),
  }),
  error: errorDocument,
} as const;

export type DocumentName = keyof typeof JSON_DOCUMENTS;

const TITLES: Record<DocumentName, string> = {
  render: 'sifkit render --json',
  'render-matrix': 'sifkit render --matrix --json',
  build: 'sifkit build --json',
  fetch: 'sifkit fetch --json',
  convert: 'sifkit convert --json',
  inspect: 'sifkit inspect --json',
  stage: 'sifkit stage --json',
  promote: 'sifkit promote --json',
  init: 'sifkit init --json',
  status: 'sifkit status --json',
  verify: 'sifkit verify --json',
  retire: 'sifkit retire [--apply] --json',
  'retire-purge': 'sifkit retire --purge --json',
  restore: 'sifkit restore --json',
  test: 'sifkit test --json',
  report: 'sifkit report --json',
  easyconfig: 'sifkit easyconfig --json',
  module: 'sifkit module --json',
  publish: 'sifkit publish --json',
  release: 'sifkit release --json and sifkit run --json',
  'release-dry-run': 'sifkit release --dry-run --json and sifkit run --dry-run --json',
  jobs: 'sifkit jobs --json',
  sign: 'sifkit sign --json',
  'verify-signature': 'sifkit verify-signature --json',
  'verify-conversion': 'sifkit verify-conversion --json',
  'host-snapshot': 'sifkit host snapshot (its output, with -o or on stdout)',
  'host-record': 'sifkit host record --json',
  compat: 'sifkit compat IMAGE --json',
  'compat-tree': 'sifkit compat --root DIR --json',
  error: 'any sifkit command --json, when it fails',
};

/** The JSON Schema text of one document, as docs/schemas holds it. */
export function schemaText(name: DocumentName): string {
  const { $schema, ...rest } = z.toJSONSchema(JSON_DOCUMENTS[name], {
    // The SBOM is described by CycloneDX's own schema, not a copy of it.
    override: (ctx) => {
      if (ctx.zodSchema === cyclonedx) {
        for (const k of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[k];
        Object.assign(ctx.jsonSchema, { $ref: CYCLONEDX_SCHEMA_ID, description: 'a CycloneDX SBOM' });
      }
    },
  }) as Record<string, unknown>;
  const schema = { $schema, title: TITLES[name], ...rest };
  return JSON.stringify(schema, null, 2) + '\n';
}

export const schemaFileName = (name: DocumentName) => `${name}.schema.json`;

/** Writes every schema into `dir` (`npm run schemas`). */
export async function writeSchemaFiles(dir: string): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const name of Object.keys(JSON_DOCUMENTS) as DocumentName[]) {
    const file = path.join(dir, schemaFileName(name));
    await fs.writeFile(file, schemaText(name));
    written.push(file);
  }
  return written;
}
