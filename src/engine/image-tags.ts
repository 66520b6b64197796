/**
 * A built image's tags and how a build finds an image again: the
 * variant's tag (moved to the latest image built for it), the image's own
 * tag, and the images of one definition hash for one stem.
 */
import { dockerhashOf, imageTag } from '../recipe/names';
import { LABEL } from '../recipe/render';
import type { ImageEngine, ImageSummary } from './engine';

export function splitTag(tag: string): { repo: string; tag: string } {
  const i = tag.lastIndexOf(':');
  return i > tag.lastIndexOf('/') ? { repo: tag.slice(0, i), tag: tag.slice(i + 1) } : { repo: tag, tag: 'latest' };
}

/** Gives an image both its tags: the variant's (moved here) and its own. */
export async function tagBoth(
  engine: ImageEngine,
  imageId: string,
  variantTag: string,
  has: string[] = [],
): Promise<void> {
  for (const ref of [variantTag, imageTag(variantTag, dockerhashOf(imageId))]) {
    if (has.includes(ref)) continue;
    const { repo, tag } = splitTag(ref);
    await engine.tagImage(imageId, repo, tag);
  }
}

/**
 * Images built from this definition for this stem. The hash does not
 * cover the naming labels (they are appended after it), so an image of
 * the same definition built under another name is not this variant's:
 * reusing it would carry the other name's labels into the SIF.
 */
export async function findByDefinitionHash(engine: ImageEngine, hash: string, stem: string): Promise<ImageSummary[]> {
  return (await engine.listImages(`${LABEL.definitionHash}=${hash}`)).filter((i) => i.labels[LABEL.stem] === stem);
}
