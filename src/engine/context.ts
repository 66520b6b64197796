import { createReadStream } from 'node:fs';
import { type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import type { ContextFile } from '../recipe/load';

/**
 * A context entry's mode in the tar: what the definition hash keys
 * (recipe/load.ts digestContext), as git keeps them: a file 0755 when any execute bit is set, else 0644; a
 * directory 0755. So a COPY gives the same modes whatever the checkout's
 * umask, and a stage that only collects files needs no `RUN chmod`.
 */
export function contextMode(f: Pick<ContextFile, 'type' | 'mode'>): number {
  if (f.type === 'directory') return 0o755;
  if (f.type === 'symlink') return 0o777;
  return (f.mode & 0o111) !== 0 ? 0o755 : 0o644;
}

/**
 * Streams a build context as a tar: the rendered Dockerfile first, then the
 * listed files one at a time (tar-stream takes one entry at a time), each
 * read from disk as it is packed. Memory stays bounded whatever the size.
 */
export function contextTar(dockerfile: string, files: ContextFile[], signal?: AbortSignal): Readable {
  const pack = tar.pack();
  const fixed = new Date(0);
  (async () => {
    pack.entry({ name: 'Dockerfile', mode: 0o644, mtime: fixed }, dockerfile);
    for (const f of files) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const header = { name: f.rel, mode: contextMode(f), mtime: f.mtime, uid: 0, gid: 0 };
      if (f.type === 'directory') pack.entry({ ...header, type: 'directory' });
      else if (f.type === 'symlink') pack.entry({ ...header, type: 'symlink', linkname: f.linkTarget });
      else {
        const entry = pack.entry({ ...header, type: 'file', size: f.size });
        await pipeline(createReadStream(f.abs, { highWaterMark: 1 << 20 }), entry);
      }
    }
    pack.finalize();
  })().catch((e) => pack.destroy(e));
  return pack as unknown as Readable;
}
