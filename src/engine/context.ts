import { createReadStream } from 'node:fs';
import { type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import type { ContextFile } from '../recipe/load';

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
      const header = { name: f.rel, mode: f.mode, mtime: f.mtime, uid: 0, gid: 0 };
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
