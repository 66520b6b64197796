import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TEST_PREFIX, runId, testDefinition, testRecipeHead } from './engine';

/**
 * Writes a small recipe on the busybox test image into a fresh defs root,
 * with a served directory holding a stand-in CPE tarball. The run id is in
 * the definition so no earlier run's image is ever reused by accident.
 */
export async function fixtureRecipe(
  name: string,
  steps: string,
): Promise<{ dir: string; served: string; tag: string }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-defs-'));
  const dir = path.join(root, name);
  const served = path.join(dir, 'served');
  const stage = path.join(root, 'stage');
  await fs.mkdir(path.join(stage, 'opt', 'cray', 'pe'), { recursive: true });
  await fs.mkdir(served, { recursive: true });
  await fs.writeFile(path.join(stage, 'opt', 'cray', 'pe', 'VERSION'), `stand-in cpe ${runId} ${name}\n`);
  execFileSync('tar', ['-C', stage, '-cf', path.join(served, 'cpe.tar'), 'opt']);
  await fs.writeFile(path.join(served, 'token'), `licensed token ${runId} ${name}\n`);
  await fs.writeFile(
    path.join(dir, 'recipe.yaml'),
    testRecipeHead(name) + ['runtime_args: [SERVER_PORT, SERVED_DIGEST]', 'server_files: served', ''].join('\n'),
  );
  await fs.writeFile(
    path.join(dir, 'main.docker'),
    testDefinition([
      `ENV SIFKIT_TEST_RUN="${runId}"`,
      'ENV GET="wget -q -O"',
      // Scoped to the steps below, stable across builds of the same served files.
      'ARG SERVER_PORT',
      'ARG SERVED_DIGEST',
      // An ARG, not an ENV: the URL must not stay in the image's config.
      'ARG BASE="http://127.0.0.1:${SERVER_PORT}"',
      steps,
    ]),
  );
  return { dir, served, tag: `${TEST_PREFIX}/${TEST_PREFIX}-${name}:v-1.0` };
}
