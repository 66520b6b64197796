/**
 * Helpers to compare file trees as the engine and our SIF show them:
 * path → type, mode, owner, size, link target, content digest; and hard
 * link groups.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { promises as fs, createReadStream } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import type Docker from 'dockerode';
import { TEST_LABEL, runId } from './engine';

export interface FileFacts {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  link?: string;
  sha256?: string;
  /** Seconds since the epoch, when the listing was asked for times. */
  mtime?: number;
}

export type Listing = Map<string, FileFacts>;

const clean = (p: string) => p.replace(/^\.?\/+/, '').replace(/\/+$/, '');

async function digest(s: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

/** Lists a tar stream (e.g. `docker export`), resolving hard links to their target's facts. */
export async function listTar(
  stream: NodeJS.ReadableStream,
  opts: { times?: boolean } = {},
): Promise<{ files: Listing; groups: string[][] }> {
  const files: Listing = new Map();
  const linkOf = new Map<string, string>();
  const extract = tar.extract();
  extract.on('entry', (h, body, next) => {
    const p = clean(h.name);
    const done = (facts?: FileFacts) => {
      if (facts && p) files.set(p, facts);
      next();
    };
    if (h.type === 'link') {
      const target = clean(h.linkname ?? '');
      linkOf.set(p, linkOf.get(target) ?? target);
      body.resume();
      body.on('end', () => done({ ...(files.get(target) as FileFacts) }));
      return;
    }
    // Ids too big for the ustar field come in pax records (tar-stream leaves them there).
    const pax = (h.pax ?? {}) as Record<string, string>;
    const id = (k: 'uid' | 'gid') => (pax[k] !== undefined ? Number(pax[k]) : (h[k] ?? 0));
    const base: FileFacts = {
      type: h.type ?? 'file',
      mode: ((h.mode ?? 0) & 0o7777).toString(8),
      uid: id('uid'),
      gid: id('gid'),
      size: h.type === 'file' ? (h.size ?? 0) : 0,
    };
    if (opts.times) base.mtime = Math.floor((h.mtime?.getTime() ?? 0) / 1000);
    if (h.type === 'file')
      digest(body as unknown as Readable).then(
        (sha256) => done({ ...base, sha256 }),
        (e) => extract.destroy(e),
      );
    else {
      body.resume();
      body.on('end', () => done(h.type === 'symlink' ? { ...base, link: h.linkname ?? '' } : base));
    }
  });
  await pipeline(stream as Readable, extract);
  const byTarget = new Map<string, string[]>();
  for (const [p, t] of linkOf) byTarget.set(t, [...(byTarget.get(t) ?? [t]), p]);
  return { files, groups: [...byTarget.values()].map((g) => g.sort()).sort() };
}

/** Lists a directory on disk (an unsquashfs extraction), with hard link groups by inode. */
export async function listDir(
  root: string,
  opts: { times?: boolean } = {},
): Promise<{ files: Listing; groups: string[][] }> {
  const files: Listing = new Map();
  const byIno = new Map<number, string[]>();
  async function walk(rel: string): Promise<void> {
    for (const name of await fs.readdir(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs);
      const base = {
        mode: (st.mode & 0o7777).toString(8),
        uid: st.uid,
        gid: st.gid,
        ...(opts.times ? { mtime: Math.floor(st.mtimeMs / 1000) } : {}),
      };
      if (st.isDirectory()) {
        files.set(r, { type: 'directory', ...base, size: 0 });
        await walk(r);
      } else if (st.isSymbolicLink()) files.set(r, { type: 'symlink', ...base, size: 0, link: await fs.readlink(abs) });
      else if (st.isFile()) {
        files.set(r, { type: 'file', ...base, size: st.size, sha256: await digest(createReadStream(abs)) });
        if (st.nlink > 1) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), r]);
      } else
        files.set(r, {
          type: st.isCharacterDevice() ? 'character-device' : st.isBlockDevice() ? 'block-device' : 'fifo',
          ...base,
          size: 0,
        });
    }
  }
  await walk('');
  return { files, groups: [...byIno.values()].map((g) => g.sort()).sort() };
}

/** Extracts a SIF's partition with unsquashfs (as root: owners and setuid bits kept). */
export function extractPartition(sif: string, offset: number, dest: string): void {
  execFileSync('unsquashfs', ['-o', String(offset), '-d', dest, '-f', '-q', '-n', sif], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** Builds a Dockerfile (no context) through the engine, labelled for cleanup. */
export async function buildFixtureImage(docker: Docker, tag: string, dockerfile: string): Promise<string> {
  const pack = tar.pack();
  pack.entry(
    { name: 'Dockerfile' },
    dockerfile.replace(/^FROM ([^\n]+)\n/, `FROM $1\nLABEL ${TEST_LABEL}="${runId}"\n`),
  );
  pack.finalize();
  const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
    t: tag,
    networkmode: 'none',
    labels: { [TEST_LABEL]: runId },
  });
  const events: Array<{ error?: string }> = await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (e: Error | null, out: Array<{ error?: string }>) =>
      e ? reject(e) : resolve(out),
    ),
  );
  const err = events.find((e) => e.error);
  if (err) throw new Error(`fixture build failed: ${err.error}`);
  return (await docker.getImage(tag).inspect()).Id;
}

export async function exportImage(
  docker: Docker,
  tag: string,
  opts: { times?: boolean } = {},
): Promise<{ files: Listing; groups: string[][] }> {
  const c = await docker.createContainer({
    Image: tag,
    Cmd: ['/bin/true'],
    Labels: { [TEST_LABEL]: runId },
    HostConfig: { NetworkMode: 'none' },
  } as never);
  try {
    return await listTar(await c.export(), opts);
  } finally {
    await c.remove({ force: true });
  }
}
