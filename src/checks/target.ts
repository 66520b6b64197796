/** What `sifkit test TARGET` names: an image in the engine, or a SIF file. */
import { promises as fs } from 'node:fs';
import type Docker from 'dockerode';
import * as path from 'node:path';
import { InputError } from '../errors';
import { connectEngine, httpStatus } from '../engine/client';
import { dockerhashOf, sifFileName } from '../recipe/names';
import { LABEL } from '../recipe/render';
import { inspectSif } from '../sif/inspect';

export interface TestTarget {
  /** The SIF name the image has (or will have) in the tree. */
  name: string;
  stem: string;
  dockerhash: string;
  recipe?: string;
  labels: Record<string, string>;
  /** An engine reference, when the image is in the engine. */
  image?: string;
  sif?: string;
}

export async function resolveTarget(text: string, signal?: AbortSignal, engine?: Docker): Promise<TestTarget> {
  const ref = text.replace(/^docker-daemon:/, '');
  if (ref.endsWith('.sif')) {
    const file = path.resolve(ref);
    await fs.access(file).catch(() => {
      throw new InputError('no-sif', `no SIF at ${file}`);
    });
    const s = await inspectSif(file);
    const stem = s.labels[LABEL.stem];
    const dockerhash = s.labels['io.sifkit.dockerhash'];
    if (!stem || !dockerhash) throw new InputError('no-provenance', `${file} carries no ${LABEL.stem}/io.sifkit.dockerhash labels`);
    return { name: sifFileName(stem, dockerhash), stem, dockerhash, recipe: s.labels[LABEL.recipe], labels: s.labels, image: s.labels['io.sifkit.image-id'], sif: file };
  }
  const docker = engine ?? (await connectEngine(signal));
  let info;
  try {
    info = await docker.getImage(ref).inspect();
  } catch (e) {
    if (httpStatus(e) === 404) throw new InputError('no-image', `the engine has no image ${ref}`);
    throw e;
  }
  const labels = (info.Config?.Labels ?? {}) as Record<string, string>;
  const stem = labels[LABEL.stem];
  if (!stem) throw new InputError('no-provenance', `image ${ref} carries no ${LABEL.stem} label (not built by sifkit)`);
  const dockerhash = dockerhashOf(info.Id);
  return { name: sifFileName(stem, dockerhash), stem, dockerhash, recipe: labels[LABEL.recipe], labels, image: info.Id };
}
