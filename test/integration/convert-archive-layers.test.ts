/**
 * Converting from an existing docker archive checks its layers, not only
 * its image ID (issue 27), against the real engine and the real mksquashfs:
 * an archive the engine saved, with one byte of one layer's file changed
 * (its config, so its image ID, untouched), is refused by `sifkit convert`
 * and by the release's convert stage: exit 3, one line, no SIF and no
 * temporary file left. The archive as saved converts.
 */
import { createReadStream, mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { RefusedError } from '../../src/errors';
import type { PipelineContext } from '../../src/pipeline/context';
import { STAGES } from '../../src/pipeline/registry';
import { newContext } from '../../src/pipeline/run-state';
import { runPipeline } from '../../src/pipeline/runner';
import { loadRecipe } from '../../src/recipe/load';
import { resolveValues } from '../../src/recipe/params';
import type { Recipe } from '../../src/recipe/types';
import { TEMP_MARKER } from '../../src/util/files';
import { tarBuffer } from '../support/archives';
import { runCli } from '../support/cli';
import { engine, removeTestImages, writeTinyRecipe } from '../support/engine';

jest.setTimeout(300_000);

// Verdicts of this run apart from the user's.
process.env.SIFKIT_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'sifkit-state-'));

/** Flips the case of the first byte of the first non-empty regular file of a layer tar, in place. */
function tamperLayer(layer: Buffer): boolean {
  for (let pos = 0; pos + 512 <= layer.length;) {
    const h = layer.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) return false;
    const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    const type = h[156] === 0 ? 0x30 : h[156];
    if (type === 0x30 && size > 0) {
      layer[pos + 512] ^= 0x20;
      return true;
    }
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return false;
}

/**
 * Rewrites a `docker save` archive with one byte of its last layer that
 * holds a file changed: the manifest, config and member names as saved.
 */
async function tamper(archive: string, out: string): Promise<void> {
  const members: Array<{ header: tar.Header; body: Buffer }> = [];
  const extract = tar.extract();
  extract.on('entry', (h, body, next) => {
    const chunks: Buffer[] = [];
    (body as unknown as Readable).on('data', (c: Buffer) => chunks.push(c));
    (body as unknown as Readable).on('end', () => {
      members.push({ header: h, body: Buffer.concat(chunks) });
      next();
    });
  });
  await pipeline(createReadStream(archive), extract);
  const layers = members.filter((m) => m.header.type === 'file' && m.header.name.endsWith('layer.tar'));
  const changed = layers.reverse().some((m) => tamperLayer(m.body));
  expect(changed).toBe(true);
  await fs.writeFile(out, await tarBuffer(members));
}

/** What a failed conversion must not leave in `dir`: a SIF or a temporary name. */
async function leftovers(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((f) => f.endsWith('.sif') || f.includes(TEMP_MARKER));
}

describe('an existing docker archive is converted only if its layers are the image config’s', () => {
  let dir: string;
  let recipe: Recipe;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-archive-layers-'));
    recipe = await loadRecipe(await writeTinyRecipe(dir));
  });
  afterAll(async () => {
    await removeTestImages();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function pass(stages: string[]): Promise<PipelineContext> {
    const ctx = newContext({
      recipe,
      values: [resolveValues(recipe, {})],
      signal: new AbortController().signal,
      options: { outDir: path.join(dir, 'out'), logDir: path.join(dir, 'logs') },
      date: '20261203',
      effects: { connectEngine: async () => engine },
    });
    const def = { name: 'h49', description: 'stages under test', stages: stages.map((stage) => ({ stage, with: {} })) };
    await runPipeline(def, ctx, STAGES, { renderer: 'silent', jobs: 1 });
    return ctx;
  }

  it('sifkit convert and the convert stage refuse a tampered layer (exit 3, one line, nothing kept)', async () => {
    const first = await pass(['render', 'build', 'archive']);
    const v0 = first.variants[0];
    expect([v0.failedStage, v0.error?.message]).toEqual([undefined, undefined]);
    const archive = v0.results.archive!.path;
    const outDir = path.dirname(archive);
    const tampered = path.join(dir, 'tampered.tar');
    await tamper(archive, tampered);

    // The command: refused with one line naming the layer, no SIF, no temporary file.
    const cliOut = path.join(dir, 'cli');
    await fs.mkdir(cliOut);
    const r = await runCli(['convert', `docker-archive:${tampered}`, '-o', path.join(cliOut, 'x.sif')]);
    expect(r.code).toBe(3);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^sifkit: error: ${tampered.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: layer \\d+ \\(.*\\) reads as sha256:[0-9a-f]{12}…, not the sha256:[0-9a-f]{12}… its image config names: the archive was altered or damaged$`,
      ),
    );
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^sifkit: hint: remove the archive/)]);
    expect(await leftovers(cliOut)).toEqual([]);

    // The same archive under the variant's name: the convert stage refuses it, not converts it.
    await fs.copyFile(tampered, archive);
    const second = await pass(['render', 'build', 'archive', 'convert']);
    const v = second.variants[0];
    expect(v.skipped.archive).toBe(`${path.basename(archive)} is there`);
    expect(v.failedStage).toBe('convert');
    expect(v.error).toBeInstanceOf(RefusedError);
    expect((v.error as RefusedError).code).toBe('layer-mismatch');
    expect(await leftovers(outDir)).toEqual([]);

    // The archive as the engine saved it converts (the check passes what is the image's).
    await fs.rm(archive);
    const third = await pass(['render', 'build', 'archive', 'convert']);
    const v3 = third.variants[0];
    expect([v3.failedStage, v3.error?.message]).toEqual([undefined, undefined]);
    expect(v3.results.convert!.source).toBe(`docker-daemon:${v3.results.build!.imageId}`);
    await fs.rm(v3.results.convert!.out);
    const fourth = await pass(['render', 'build', 'archive', 'convert']);
    const v4 = fourth.variants[0];
    expect([v4.failedStage, v4.error?.message]).toEqual([undefined, undefined]);
    expect(v4.results.convert!.source).toBe(`docker-archive:${archive}`);
  });
});
