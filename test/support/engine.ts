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

/** The naming prefix of every test recipe: its images are sifkittest/sifkittest-NAME. */
export const TEST_PREFIX = 'sifkittest';

/** The local busybox image (scripts/setup.sh loads it) every small test definition starts from. */
export const BUSYBOX = 'sifkit-test/busybox:latest';

/**
 * A test definition: the local busybox base (or `base`), this run's label
 * (early, so intermediate images of a failed build carry it too), then
 * `steps`. Every test recipe writer (`writeTestRecipe`, fixtures.ts's)
 * starts so.
 */
export function testDefinition(steps: string[], base = BUSYBOX): string {
  return [`FROM ${base}`, `LABEL ${TEST_LABEL}="${runId}"`, ...steps, ''].join('\n');
}

/**
 * The head of a small test recipe's recipe.yaml: its name, sifkittest
 * naming on the one version parameter `v` (default 1.0), its one
 * fragment. What follows it (served files, checks, testing) is the
 * caller's.
 */
export function testRecipeHead(name: string, fragment = `${name}/main.docker`): string {
  return [
    `name: ${name}`,
    `naming: { prefix: ${TEST_PREFIX}, app: ${name}, version: v, parts: [[v, v]] }`,
    `fragments: [${fragment}]`,
    "parameters: { v: { type: version, default: '1.0' } }",
    '',
  ].join('\n');
}

/**
 * A test recipe's `testing:` block: locally without a launcher, and on
 * this machine's Slurm (partition standard-g), where the job runs the image
 * with docker on the node and the checks' directory at /myrun.
 */
export const TEST_TESTING = `testing:
  local: { launcher: '' }
  slurm:
    partition: standard-g
    sbatch: []
    srun: srun -N {nodes} -n 1
    container: docker run --rm --network=none -v {workdir}:/myrun {image}
    launcher: ''
`;

/**
 * A small test recipe DEFS/NAME: recipe.yaml is the head and `rest`,
 * main.docker `testDefinition(steps, base)`. Returns its directory.
 */
export async function writeTestRecipe(
  defs: string,
  name: string,
  o: { steps: string[]; rest?: string; base?: string },
): Promise<string> {
  const dir = path.join(defs, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'main.docker'), testDefinition(o.steps, o.base));
  await fs.writeFile(path.join(dir, 'recipe.yaml'), testRecipeHead(name) + (o.rest ?? ''));
  return dir;
}

/**
 * A tiny recipe on the local busybox base, labelled for this run's clean-up:
 * DIR/defs/tiny, one check that reads the version its build wrote. `extra`
 * is YAML added to the recipe (a matrix, more checks, a Slurm testing
 * profile); `also` is shell run after the version is written.
 */
export function writeTinyRecipe(
  dir: string,
  extra = "testing:\n  local: { launcher: '' }\n",
  also?: string,
): Promise<string> {
  return writeTestRecipe(path.join(dir, 'defs'), 'tiny', {
    steps: [`RUN echo "tiny {{ v }}" > /etc/tiny-version${also ? ` && ${also}` : ''}`, 'ENV WITH_CONDA="true"'],
    rest: `checks:\n  - { name: version, command: 'cat /etc/tiny-version', expect: 'tiny' }\n${extra}`,
  });
}
