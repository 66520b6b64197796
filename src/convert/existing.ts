/**
 * Conversions a rerun finds already done: is the SIF, or the docker
 * archive, under a variant's name one of the image the run built? Each
 * file is read once, and one that cannot be read is not one (the caller
 * converts again). The release's archive and convert stages ask here.
 */
import { existsSync } from 'node:fs';
import { inspectSif, type SifSummary } from '../sif/inspect';
import { LABEL } from '../validate/labels';
import { openDockerArchive } from './archive';

/** The SIF at `file`, read once, when it is a readable conversion of image `imageId` (its image-id label). */
export async function sifOfImage(file: string, imageId: string): Promise<SifSummary | undefined> {
  if (!existsSync(file)) return undefined;
  try {
    const s = await inspectSif(file);
    return s.labels[LABEL.imageId] === imageId ? s : undefined;
  } catch {
    return undefined; // unreadable: convert again
  }
}

/**
 * Whether the docker archive at `file` is of image `imageId` (its config
 * digest is the image's ID). An archive is published whole, by rename, so
 * converting it costs no read of the engine.
 */
export async function archiveOfImage(file: string, imageId: string): Promise<boolean> {
  if (!existsSync(file)) return false;
  try {
    return (await openDockerArchive(file)).imageId === imageId;
  } catch {
    return false; // unreadable: the engine has the image
  }
}
