import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import Docker from 'dockerode';
import { engineAddress } from '../../src/engine/client';
import { dockerEngine } from '../../src/engine/docker';

/** Every test run marks what it creates with this label and removes it after. */
export const TEST_LABEL = 'io.sifkit.test';
export const runId = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

export const docker = new Docker();
/** The same engine as sifkit's code takes it. */
export const engine = dockerEngine(docker, engineAddress());

export async function removeTestImages(id = runId): Promise<void> {
  const images = await docker.listImages({ all: true, filters: JSON.stringify({ label: [`${TEST_LABEL}=${id}`] }) });
  for (const img of images)
    await docker
      .getImage(img.Id)
      .remove({ force: true })
      .catch(() => undefined);
}

export async function allContainerIds(): Promise<Set<string>> {
  return new Set((await docker.listContainers({ all: true })).map((c) => c.Id));
}

/**
 * A test definition: the local busybox base, this run's label (early, so
 * intermediate images of a failed build carry it too), then `steps`. Both
 * recipe writers (this file's tiny one and fixtures.ts's) start so.
 */
export function testDefinition(steps: string[]): string {
  return ['FROM sifkit-test/busybox:latest', `LABEL ${TEST_LABEL}="${runId}"`, ...steps, ''].join('\n');
}

/**
 * A tiny recipe on the local busybox base, labelled for this run's clean-up:
 * DIR/defs/tiny, one check that reads the version its build wrote. `extra`
 * is YAML added to the recipe (a matrix, more checks, a Slurm testing
 * profile); `also` is shell run after the version is written.
 */
export async function writeTinyRecipe(
  dir: string,
  extra = "testing:\n  local: { launcher: '' }\n",
  also?: string,
): Promise<string> {
  const defs = path.join(dir, 'defs', 'tiny');
  await fs.mkdir(defs, { recursive: true });
  await fs.writeFile(
    path.join(defs, 'main.docker'),
    testDefinition([
      `RUN echo "tiny {{ v }}" > /etc/tiny-version${also ? ` && ${also}` : ''}`,
      'ENV WITH_CONDA="true"',
    ]),
  );
  await fs.writeFile(
    path.join(defs, 'recipe.yaml'),
    `name: tiny
naming: { prefix: sifkittest, app: tiny, version: v, parts: [[v, v]] }
fragments: [tiny/main.docker]
parameters: { v: { type: version, default: '1.0' } }
checks:
  - { name: version, command: 'cat /etc/tiny-version', expect: 'tiny' }
${extra}`,
  );
  return defs;
}
