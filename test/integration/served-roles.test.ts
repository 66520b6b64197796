import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { readVerdict } from '../../src/engine/verdict';
import { runCli } from '../support/cli';
import { allContainerIds, docker, removeTestImages, runId, testDefinition } from '../support/engine';
import { fixtureRecipe } from '../support/fixtures';

/**
 * Issue 25: served files judged by role through the real engine. A served
 * tool stays at its declared path with exactly the served bytes; licensed
 * bytes anywhere (any layer, any name, a tarball's member, deleted later)
 * fail with exit 3 and leave no tagged image; a verdict reached under other
 * roles is not reused; the render-time check refuses a licensed fetch not
 * removed in its own RUN before anything is built.
 */
jest.setTimeout(600_000);

const stateDir = mkdtempSync(path.join(os.tmpdir(), 'sifkit-state-'));
process.env.SIFKIT_STATE_DIR = stateDir;
const verdictDir = path.join(stateDir, 'scan-verdicts');

afterAll(() => removeTestImages());

const TOOL_PATH = '/usr/local/bin/standin-tool';

/** A fixture recipe serving a stand-in tool beside the licensed files, with the roles given. */
async function withTool(name: string, steps: string, roles = `  - { file: mytool, role: tool, path: ${TOOL_PATH} }\n`) {
  const fx = await fixtureRecipe(name, steps);
  const tool = `#!/bin/sh\necho "stand-in tool ${runId} ${name}"\n`;
  await fs.writeFile(path.join(fx.served, 'mytool'), tool, { mode: 0o755 });
  await setRoles(fx.dir, roles);
  return { ...fx, tool };
}

async function setRoles(dir: string, roles: string): Promise<void> {
  const file = path.join(dir, 'recipe.yaml');
  const text = (await fs.readFile(file, 'utf8')).replace(/\nserved:\n[\s\S]*$/, '\n');
  await fs.writeFile(
    file,
    `${text}served:\n  - { file: cpe.tar, role: licensed }\n  - { file: token, role: licensed }\n${roles}`,
  );
}

async function imageExists(tag: string): Promise<boolean> {
  return docker
    .getImage(tag)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

/** The bytes of one file of an image, read through a container that is never started. */
async function fileInImage(image: string, file: string): Promise<Buffer> {
  const c = await docker.createContainer({ Image: image, Cmd: ['true'], Labels: { 'io.sifkit.test': runId } });
  try {
    const archive = await c.getArchive({ path: file });
    const extract = tar.extract();
    const chunks: Buffer[] = [];
    extract.on('entry', (_h, s, next) => {
      s.on('data', (d: unknown) => chunks.push(d as Buffer));
      s.on('end', next);
    });
    await new Promise<void>((resolve, reject) => {
      extract.on('finish', resolve);
      extract.on('error', reject);
      (archive as NodeJS.ReadableStream).pipe(extract);
    });
    return Buffer.concat(chunks);
  } finally {
    await c.remove({ force: true });
  }
}

const FETCH_TOOL = `RUN set -e; mkdir -p /usr/local/bin; $GET ${TOOL_PATH} $BASE/mytool; chmod 0755 ${TOOL_PATH}`;

describe('served files by role, through the real engine', () => {
  it('ships a served tool at its declared path with exactly the served bytes, and records the roles', async () => {
    const fx = await withTool('tool', FETCH_TOOL);
    const r = await runCli(['build', fx.dir, '--json']);
    expect([r.code, r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error'))]).toEqual([0, []]);
    const img = JSON.parse(r.stdout).images[0];
    expect(img.leakScan.tools).toBe(1);
    expect((await fileInImage(img.imageId, TOOL_PATH)).toString()).toBe(fx.tool);
    const verdict = await readVerdict(verdictDir, img.imageId);
    expect(verdict).toMatchObject({
      passed: true,
      roles: `cpe.tar licensed\nmytool tool ${TOOL_PATH}\ntoken licensed`,
    });
    expect(await imageExists(fx.tag)).toBe(true);

    // The same definition judged under other roles: the verdict is not reused, the image is scanned again.
    await setRoles(fx.dir, '  - { file: mytool, role: licensed }\n');
    const again = await runCli(['build', fx.dir]);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(
      new RegExp(`licensed file ${TOOL_PATH} is in layer \\S+ \\(served content\\); the image was removed`),
    );
    expect(await imageExists(fx.tag)).toBe(false);
  });

  it('counts a served file the recipe does not declare as licensed', async () => {
    const fx = await withTool('undeclared', FETCH_TOOL, '');
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`licensed file ${TOOL_PATH} is in layer`);
    expect(await imageExists(fx.tag)).toBe(false);
  });

  it('fails a tool also copied to another path, naming it, and tags nothing', async () => {
    const fx = await withTool('toolcopy', `${FETCH_TOOL}\nRUN cp ${TOOL_PATH} /opt-tool-copy`);
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `served tool mytool is also at /opt-tool-copy in layer \\S+ \\(it may stay only at ${TOOL_PATH}\\); the image was removed`,
      ),
    );
    expect(await imageExists(fx.tag)).toBe(false);
  });

  it('fails a tool changed after the fetch, or missing', async () => {
    const changed = await withTool('toolchanged', `${FETCH_TOOL}\nRUN echo '# changed' >> ${TOOL_PATH}`);
    const a = await runCli(['build', changed.dir]);
    expect(a.code).toBe(1);
    expect(a.stderr).toContain(`served tool mytool at ${TOOL_PATH} is not the served file (its content changed)`);
    const missing = await withTool('toolgone', `${FETCH_TOOL}\nRUN rm ${TOOL_PATH}`);
    const b = await runCli(['build', missing.dir]);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain(`served tool mytool is not in the image at ${TOOL_PATH}, its declared path`);
    expect([await imageExists(changed.tag), await imageExists(missing.tag)]).toEqual([false, false]);
  });

  it("refuses a tarball's member kept under another name, even when a later layer deletes it (exit 3)", async () => {
    const fx = await withTool(
      'member',
      'RUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; tar -xf /cpe.tar; rm /cpe.tar; cp /opt/cray/pe/VERSION /innocent.txt; rm -rf /opt/cray\nRUN rm /innocent.txt',
    );
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/licensed file \/innocent\.txt is in layer \S+ \(served content\); the image was removed/);
    expect(await imageExists(fx.tag)).toBe(false);
  });

  it('refuses at render time a licensed fetch not removed in its own RUN: nothing is built', async () => {
    const fx = await withTool(
      'notremoved',
      'RUN set -e; cd /; wget -q -O /cpe.tar "http://127.0.0.1:${SERVER_PORT}/cpe.tar"; tar -xf /cpe.tar; rm /cpe.tar\nRUN rm -rf /opt/cray',
    );
    const before = await allContainerIds();
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^sifkit: error: notremoved \S+: step 8 \(RUN at line \d+\) unpacks licensed cpe\.tar and does not run \$REMOVE_CRAY_DEPS after it in the same RUN$/m,
    );
    expect(r.stderr).not.toMatch(/step \d+\/\d+:/);
    expect([...(await allContainerIds())].filter((id) => !before.has(id))).toEqual([]);
    expect(await imageExists(fx.tag)).toBe(false);
    const render = await runCli(['render', fx.dir]);
    expect(render.code).toBe(3);
  });
});

/** The image's own stage after the fixture's first one (issue 27.3: components built in stages and copied in). */
const IMAGE_STAGE = testDefinition([]).trimEnd();

describe('served files fetched in a stage that is copied into the image (issue 27.3)', () => {
  it('judges a tool copied out of its stage to the declared path: shipped, byte for byte', async () => {
    const fx = await withTool(
      'stagetool',
      `RUN set -e; mkdir -p /out; $GET /out/mytool $BASE/mytool; chmod 0755 /out/mytool\n${IMAGE_STAGE}\nCOPY --from=0 /out/mytool ${TOOL_PATH}`,
    );
    const r = await runCli(['build', fx.dir, '--json']);
    expect([r.code, r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error'))]).toEqual([0, []]);
    const img = JSON.parse(r.stdout).images[0];
    expect(img.leakScan.tools).toBe(1);
    expect((await fileInImage(img.imageId, TOOL_PATH)).toString()).toBe(fx.tool);
  });

  it('refuses licensed bytes a stage made and the image copied, though no step of the image fetched them (exit 3)', async () => {
    const fx = await withTool(
      'stageleak',
      `${FETCH_TOOL}\nRUN set -e; cd /; $GET /cpe.tar $BASE/cpe.tar; tar -xf /cpe.tar; rm /cpe.tar; mkdir -p /out; cp /opt/cray/pe/VERSION /out/notes.txt; rm -rf /opt/cray\n${IMAGE_STAGE}\nCOPY --from=0 ${TOOL_PATH} ${TOOL_PATH}\nCOPY --from=0 /out /opt/out`,
    );
    const r = await runCli(['build', fx.dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /licensed file \/opt\/out\/notes\.txt is in layer \S+ \(served content\); the image was removed/,
    );
    expect(await imageExists(fx.tag)).toBe(false);
  });
});
