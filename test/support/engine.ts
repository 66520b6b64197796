import { randomBytes } from 'node:crypto';
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
  const images = await docker.listImages({ all: true, filters: JSON.stringify({ label: [`${TEST_LABEL}=${id}`] }) } as never);
  for (const img of images as unknown as Docker.ImageInfo[]) await docker.getImage(img.Id).remove({ force: true }).catch(() => undefined);
}

export async function allContainerIds(): Promise<Set<string>> {
  return new Set((await docker.listContainers({ all: true })).map((c) => c.Id));
}
