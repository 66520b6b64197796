/**
 * Containers a killed sifkit left behind. Each container sifkit creates
 * for a moment (an export that is never started) carries a label whose
 * value is `host:pid` of the process that made it; a kill -9 leaves it,
 * and the next run of the same kind removes those whose process is gone
 * from this host. Containers of live processes, or of other hosts sharing
 * the engine, are left alone.
 */
import * as os from 'node:os';
import { throwIfAborted } from '../errors';
import { deadOnThisHost } from '../util/process';
import type { ContainerHandle, ImageEngine } from './engine';

/** Removes the containers labelled `labelKey` whose creating process died on this host; how many. */
export async function removeDeadContainers(engine: ImageEngine, labelKey: string): Promise<number> {
  let removed = 0;
  for (const c of await engine.listContainers(labelKey)) {
    const [host, pid] = (c.labels[labelKey] ?? '').split(':');
    if (!deadOnThisHost(host, Number(pid))) continue;
    // Another run may be removing it at the same moment: gone is what was wanted.
    await engine.removeContainer(c.id).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}

/**
 * A container of `image` that is never started, only exported (the files
 * as the engine sees them), labelled `labelKey` with this process; those
 * of killed processes of the same kind are removed first.
 */
export async function exportContainer(
  engine: ImageEngine,
  image: string,
  labelKey: string,
  signal?: AbortSignal,
): Promise<ContainerHandle> {
  await removeDeadContainers(engine, labelKey);
  throwIfAborted(signal);
  return engine.createContainer({
    image,
    // Never started: the entrypoint is only there because create wants one.
    entrypoint: ['/sifkit-export-only'],
    cmd: [],
    labels: { [labelKey]: `${os.hostname()}:${process.pid}` },
    network: 'disabled',
  });
}
