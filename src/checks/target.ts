/** What `sifkit test TARGET` names: an image in the engine, or a SIF file. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError, isSifkitError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { connectEngine, inspectImageRef } from '../engine/client';
import type { ImageEngine } from '../engine/engine';
import { dockerhashOf, sifFileName } from '../recipe/names';
import { inspectSif } from '../sif/inspect';
import { imageLabels } from '../validate/labels';

export interface TestTarget {
  /** The SIF name the image has (or will have) in the tree. */
  name: string;
  stem: string;
  dockerhash: string;
  recipe?: string;
  /** The recipe parameters the image was built with, from its labels. */
  params: Record<string, string>;
  labels: Record<string, string>;
  /** An engine reference, when the image is in the engine. */
  image?: string;
  sif?: string;
}

/**
 * The image a release has just built (and converted): the target from what
 * the pipeline holds, without asking the engine or reading labels again.
 */
export function builtTarget(
  build: { imageId: string; dockerhash: string },
  stem: string,
  recipe: string,
  params: Record<string, string>,
  labels: Record<string, string>,
  sif?: string,
): TestTarget {
  return {
    name: sifFileName(stem, build.dockerhash),
    stem,
    dockerhash: build.dockerhash,
    recipe,
    params,
    labels,
    image: build.imageId,
    sif,
  };
}

/** `sifkit test TARGET`'s text, parsed once: an image in the engine (tag or ID) or a .sif file. */
export async function resolveTarget(text: string, signal?: AbortSignal, engine?: ImageEngine): Promise<TestTarget> {
  const ref = text.replace(/^docker-daemon:/, '');
  if (ref.endsWith('.sif')) {
    const file = path.resolve(ref);
    await fs.access(file).catch(() => {
      throw new InputError('no-sif', `no SIF at ${file}`);
    });
    const l = imageLabels((await inspectSif(file)).labels, file);
    return {
      name: sifFileName(l.stem, l.dockerhash),
      stem: l.stem,
      dockerhash: l.dockerhash,
      recipe: l.recipe,
      params: l.params,
      labels: l.all,
      image: l.imageId,
      sif: file,
    };
  }
  const docker = engine ?? (await connectEngine(signal));
  const info = await inspectImageRef(docker, ref).catch((e: unknown) => {
    // The argument takes two forms: the refusal names the other one too.
    if (isSifkitError(e) && e.code === 'no-image')
      throw new InputError('no-image', `${e.message}, and ${escapeForMessage(text)} is not a .sif file`, {
        hint: 'a test target is an image in the engine (tag or ID) or a path to a .sif file',
      });
    throw e;
  });
  const l = imageLabels(info.labels, `image ${ref}`, { dockerhash: dockerhashOf(info.id) });
  return {
    name: sifFileName(l.stem, l.dockerhash),
    stem: l.stem,
    dockerhash: l.dockerhash,
    recipe: l.recipe,
    params: l.params,
    labels: l.all,
    image: info.id,
  };
}
