/**
 * Issue 17.2: a rebuild after a change to the last fragment re-runs only
 * the steps after the change. A small recipe on the busybox test image:
 * five slow steps, the server's two stable arguments, a step that fetches
 * a served file, a slow step after it, and a last fragment. Built once
 * without the cache (the first build), then with the last fragment
 * changed; the second build's log says which steps came from the cache.
 */
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildVariant } from '../src/engine/build';
import type { BuildRecord } from '../src/engine/build-record';
import { connectEngine } from '../src/engine/client';
import type { ImageEngine } from '../src/engine/engine';
import { loadRecipe, readFragments } from '../src/recipe/load';
import { resolveValues } from '../src/recipe/params';
import { renderVariant } from '../src/recipe/render';
import type { Figure } from './table';

const STEP_SECONDS = 2;
const MARK = 'io.sifkit.bench';

async function writeRecipe(root: string, last: string): Promise<void> {
  const dir = path.join(root, 'cachebench');
  await fs.mkdir(path.join(dir, 'served'), { recursive: true });
  await fs.writeFile(path.join(dir, 'served', 'cpe.tar'), 'stand-in licensed bytes\n');
  await fs.writeFile(
    path.join(dir, 'recipe.yaml'),
    [
      'name: cachebench',
      'naming: { prefix: sifkitbench, app: cachebench, version: v, parts: [[v, v]] }',
      'fragments: [cachebench/main.docker, cachebench/last.docker]',
      'runtime_args: [SERVER_PORT, SERVED_DIGEST]',
      'server_files: served',
      "parameters: { v: { type: version, default: '1.0' } }",
      '',
    ].join('\n'),
  );
  const slow = [1, 2, 3, 4, 5].map((i) => `RUN sleep ${STEP_SECONDS} && echo ${i} > /slow${i}`);
  await fs.writeFile(
    path.join(dir, 'main.docker'),
    [
      'FROM sifkit-test/busybox:latest',
      `LABEL ${MARK}="${path.basename(root)}"`,
      ...slow,
      'ARG SERVER_PORT',
      'ARG SERVED_DIGEST',
      `RUN wget -q -O /cpe.tar "http://127.0.0.1:\${SERVER_PORT}/cpe.tar" && wc -c < /cpe.tar > /fetched && rm /cpe.tar && sleep ${STEP_SECONDS}`,
      `RUN sleep ${STEP_SECONDS} && echo after > /after`,
      '',
    ].join('\n'),
  );
  await fs.writeFile(path.join(dir, 'last.docker'), `${last}\n`);
}

async function build(engine: ImageEngine, root: string, rebuild: boolean): Promise<BuildRecord> {
  const recipe = await loadRecipe(path.join(root, 'cachebench'));
  const rendered = renderVariant({
    recipe,
    values: resolveValues(recipe, {}),
    fragments: await readFragments(recipe),
    files: {},
    provenance: { sifkitVersion: 'bench', revision: 'bench' },
    date: '20000101',
  });
  return buildVariant(engine, {
    recipe,
    rendered,
    rebuild,
    logDir: path.join(root, 'logs'),
    signal: new AbortController().signal,
    verdictDir: path.join(root, 'verdicts'),
  });
}

export async function cacheBenches(): Promise<Figure[]> {
  const engine = await connectEngine();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-bench-cache-'));
  try {
    const nonce = randomBytes(4).toString('hex');
    await writeRecipe(root, `RUN echo first ${nonce} > /last`);
    const first = await build(engine, root, true);
    await writeRecipe(root, `RUN echo changed ${nonce} > /last`);
    const second = await build(engine, root, false);
    const log = await fs.readFile(second.logPath!, 'utf8');
    const steps = log.split(/Step \d+\/\d+ : /).slice(1);
    const cached = steps.filter((s) => s.includes('Using cache')).length;
    // Every step but FROM (never "cached"), the last fragment's and the provenance LABEL after it.
    const expected = steps.length - 3;
    return [
      {
        figure: `rebuild after changing the last fragment (s; baseline first build), ${cached}/${steps.length} steps from cache`,
        sifkit: second.durationMs / 1000,
        baseline: first.durationMs / 1000,
        unit: 's',
        target: `all ${expected} earlier steps cached`,
        met: cached === expected,
      },
    ];
  } finally {
    for (const img of await engine.listImages(`${MARK}=${path.basename(root)}`))
      await engine.removeImage(img.id).catch(() => undefined);
    execSync(`rm -rf ${root}`);
  }
}
