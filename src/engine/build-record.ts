/**
 * What a build records of the image it built or reused (the record the
 * pipeline carries to convert and attest), and the facts provenance needs
 * of it, asked of the engine once by the build.
 */
import type { LeakScanResult } from '../fileserver/leakscan';
import { baseImages } from '../recipe/parsed-dockerfile';
import type { RenderedVariant } from '../recipe/render';
import type { EngineVersion, ImageDetails, ImageEngine } from './engine';

export interface BuildRecord {
  imageId: string;
  dockerhash: string;
  /** The variant's tag, moved to this image (the last one built or reused for the variant). */
  tag: string;
  /** This image's own tag (`imageTag`), which no later build moves. */
  imageTag: string;
  definitionHash: string;
  size: number;
  durationMs: number;
  reused: boolean;
  logPath?: string;
  accessLogPath?: string;
  leakScan?: Omit<LeakScanResult, 'leaks' | 'toolProblems'>;
  /** The engine that built or holds the image, and the version that built it when the image records one. */
  engine: EngineVersion & { imageBuiltWith?: string };
  /** The definition's FROM images, each with the image ID it resolved to in that engine (none: it holds no such image). */
  baseImages: Array<{ ref: string; imageId?: string }>;
}

/**
 * What provenance records of a build, asked of the engine once, here,
 * rather than again by the attest step: the engine's version, the version
 * that built the image (from `info` when the build just inspected it), and
 * what each FROM image of the render's parse resolved to.
 */
export async function buildFacts(
  engine: ImageEngine,
  rendered: RenderedVariant,
  imageId: string,
  signal: AbortSignal,
  info?: ImageDetails,
): Promise<Pick<BuildRecord, 'engine' | 'baseImages'>> {
  const resolved = [];
  for (const ref of baseImages(rendered.parsed)) {
    const id = await engine.inspectImage(ref).then(
      (d) => d.id,
      () => undefined,
    );
    resolved.push({ ref, imageId: id });
  }
  const version = await engine.version(signal);
  const builtWith = (info ?? (await engine.inspectImage(imageId).catch(() => undefined)))?.builtWith;
  return { engine: { ...version, ...(builtWith ? { imageBuiltWith: builtWith } : {}) }, baseImages: resolved };
}
