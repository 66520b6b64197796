/**
 * Proves a SIF is the conversion of an image: converts the source again,
 * with the options the SIF shows (its compression), to a temp file beside
 * it, and compares the two byte for byte. Conversion is reproducible
 * (reproducible.ts), so any difference means another image, other
 * options, another sifkit version, or a SIF changed after conversion.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ImageEngine } from '../engine/engine';
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { inspectSif } from '../sif/inspect';
import { copyAddedObjects } from '../sif/update';
import { tempNameFor } from '../util/files';
import { convert } from './convert';
import { compareFiles, type Comparison } from './reproducible';
import { parseCompression } from './squash-options';

export interface ReconvertResult extends Comparison {
  sif: string;
  source: string;
  imageId?: string;
}

/**
 * The source a SIF was converted from, as its definition file names it
 * (`bootstrap: KIND`, `from: REF`): the SIF is untrusted, so only an image
 * of the local engine, by a plain reference, is taken from it. A docker
 * archive is a file on this host, and a SIF never chooses which host file
 * sifkit opens: that source the user names, or it is refused.
 */
export function sourceFromDeffile(deffile: string | undefined, sif = 'the SIF'): string | undefined {
  const kind = /^bootstrap:\s*(\S+)\s*$/im.exec(deffile ?? '')?.[1];
  const from = /^from:\s*(.+?)\s*$/im.exec(deffile ?? '')?.[1];
  if (!kind || !from || (kind !== 'docker-daemon' && kind !== 'docker-archive')) return undefined;
  if (kind === 'docker-daemon' && /^[a-z0-9][a-z0-9._/:@-]{0,255}$/.test(from)) return `${kind}:${from}`;
  throw new InputError(
    'untrusted-source',
    `${sif} names its source as ${escapeForMessage(`${kind}:${from}`)}; sifkit takes only an engine image by a plain reference from a SIF, never a host file`,
    { hint: 'give the source yourself: docker-archive:PATH or docker-daemon:REF' },
  );
}

/**
 * `workDir` holds the second conversion (default: beside the SIF); a tree's
 * verify puts it outside the tree, which a check must not write into.
 */
export async function reconvertAndCompare(
  sif: string,
  sourceText: string | undefined,
  opts: { signal?: AbortSignal; engine?: ImageEngine; fixPerms?: boolean; mem?: string; workDir?: string } = {},
): Promise<ReconvertResult> {
  const summary = await inspectSif(sif);
  const source = sourceText ?? sourceFromDeffile(summary.deffile, sif);
  if (!source)
    throw new InputError(
      'no-source',
      `${sif} does not name the image it came from: give the source (docker-daemon:REF or docker-archive:PATH)`,
    );
  const compression = parseCompression(summary.partition?.compression ?? 'gzip');
  const again = tempNameFor(opts.workDir ? path.join(opts.workDir, path.basename(sif)) : path.resolve(sif));
  try {
    const r = await convert(source, again, {
      compression,
      fixPerms: opts.fixPerms,
      mem: opts.mem,
      signal: opts.signal,
      engine: opts.engine,
    });
    // What was added after conversion (SBOM, provenance, signatures) is the signatures' to prove, not the conversion's: carried over as is.
    await copyAddedObjects(sif, again);
    return { sif, source, imageId: r.imageId, ...(await compareFiles(sif, again)) };
  } finally {
    await fs.rm(again, { force: true });
  }
}
