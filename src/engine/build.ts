/**
 * Builds one rendered variant through the Engine API: reuse by definition
 * hash, the context streamed as a tar, licensed files served for the
 * build's duration, the build stream parsed for errors, the image scanned
 * for leaks. Containers and half-built images do not outlive a failure.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type Docker from 'dockerode';
import { InputError, InterruptedError, OperationError, RefusedError } from '../errors';
import { startFileServer } from '../fileserver/server';
import { scanImageArchive, servedDigests, type LeakScanResult } from '../fileserver/leakscan';
import { listContext } from '../recipe/load';
import { dockerhashOf } from '../recipe/names';
import { LABEL, type RenderedVariant } from '../recipe/render';
import type { Recipe } from '../recipe/types';
import { contextTar } from './context';
import { BuildStreamParser } from './progress';

export interface BuildOptions {
  recipe: Recipe;
  rendered: RenderedVariant;
  /** Directory of licensed files to serve; defaults to the recipe's own. */
  serverFiles?: string;
  rebuild?: boolean;
  logDir: string;
  signal: AbortSignal;
  /** Extra labels set through the API (tests mark what they create). */
  extraLabels?: Record<string, string>;
  onProgress?: (line: string) => void;
}

export interface BuildRecord {
  imageId: string;
  dockerhash: string;
  tag: string;
  definitionHash: string;
  size: number;
  durationMs: number;
  reused: boolean;
  logPath?: string;
  accessLogPath?: string;
  leakScan?: Omit<LeakScanResult, 'leaks'>;
}

export function splitTag(tag: string): { repo: string; tag: string } {
  const i = tag.lastIndexOf(':');
  return i > tag.lastIndexOf('/') ? { repo: tag.slice(0, i), tag: tag.slice(i + 1) } : { repo: tag, tag: 'latest' };
}

/** Images already built from this exact definition. */
export async function findByDefinitionHash(docker: Docker, hash: string): Promise<Docker.ImageInfo[]> {
  return (await docker.listImages({ filters: JSON.stringify({ label: [`${LABEL.definitionHash}=${hash}`] }) } as never)) as unknown as Docker.ImageInfo[];
}

async function listFilesRecursive(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFilesRecursive(dir, r)));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

async function removeQuietly(docker: Docker, ids: Iterable<string>): Promise<void> {
  for (const id of ids) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
}

export async function buildVariant(docker: Docker, opts: BuildOptions): Promise<BuildRecord> {
  const { rendered, signal } = opts;
  const started = Date.now();
  const tag = rendered.names.tag;

  if (!opts.rebuild) {
    const found = await findByDefinitionHash(docker, rendered.definitionHash);
    if (found.length > 0) {
      const img = found.sort((a, b) => b.Created - a.Created)[0];
      const { repo, tag: t } = splitTag(tag);
      if (!(img.RepoTags ?? []).includes(tag)) await docker.getImage(img.Id).tag({ repo, tag: t });
      opts.onProgress?.(`reusing ${dockerhashOf(img.Id)}: same definition hash`);
      return { imageId: img.Id, dockerhash: dockerhashOf(img.Id), tag, definitionHash: rendered.definitionHash, size: img.Size, durationMs: Date.now() - started, reused: true };
    }
  }

  const serverDir = opts.serverFiles ?? opts.recipe.serverFiles;
  const needsServer = opts.recipe.runtimeArgs.includes('SERVER_PORT');
  if (needsServer && !serverDir) {
    throw new InputError('no-server-files', `recipe ${opts.recipe.name} fetches licensed files at build time: give --server-files DIR`);
  }
  const files = opts.recipe.context ? await listContext(opts.recipe.context) : [];
  await fs.mkdir(opts.logDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const logPath = path.join(opts.logDir, `${rendered.names.stem}-${stamp}.build.log`);
  const accessLogPath = path.join(opts.logDir, `${rendered.names.stem}-${stamp}.access.log`);
  const server = serverDir ? await startFileServer(serverDir, accessLogPath) : undefined;
  const log = createWriteStream(logPath);
  const parser = new BuildStreamParser();
  let imageId: string | undefined;
  try {
    const buildargs: Record<string, string> = {};
    if (server) {
      buildargs.SERVER_PORT = String(server.port);
      buildargs.SERVER_PREFIX = server.prefix;
    }
    const stream = await docker.buildImage(contextTar(rendered.dockerfile, files, signal) as never, {
      t: tag,
      buildargs,
      labels: opts.extraLabels,
      // The file server listens on the host's loopback: the build must share its network.
      networkmode: 'host',
      rm: true,
      forcerm: true,
      nocache: Boolean(opts.rebuild),
      abortSignal: signal,
    });
    await new Promise<void>((resolve, reject) => {
      const onEvents = (events: ReturnType<BuildStreamParser['feed']>) => {
        for (const ev of events) {
          if (ev.kind === 'step' && ev.step) opts.onProgress?.(`step ${ev.step.n}/${ev.step.of}: ${ev.step.instruction.slice(0, 100)}`);
        }
      };
      stream.on('data', (chunk: Buffer) => {
        log.write(chunk);
        onEvents(parser.feed(chunk));
      });
      stream.on('end', () => {
        onEvents(parser.end());
        resolve();
      });
      stream.on('error', reject);
      signal.addEventListener('abort', () => reject(new InterruptedError('build interrupted')), { once: true });
    });
    if (parser.error !== undefined) {
      const step = parser.step ? `step ${parser.step.n}/${parser.step.of} (${parser.step.instruction.slice(0, 80)})` : 'the build';
      throw new OperationError('build-failed', `${rendered.names.stem}: ${step} failed: ${parser.error.split('\n')[0]}`, {
        hint: `last lines:\n${parser.tail.slice(-10).join('\n')}\nfull log: ${logPath}`,
      });
    }
    imageId = parser.imageId;
    if (!imageId) throw new OperationError('build-failed', `${rendered.names.stem}: the engine reported no image (log: ${logPath})`);
    const info = await docker.getImage(imageId).inspect();
    imageId = info.Id;

    // Leak scan over every layer of what was just built.
    let leakScan: LeakScanResult | undefined;
    if (serverDir) {
      opts.onProgress?.('scanning layers for served files');
      const digests = await servedDigests(serverDir, await listFilesRecursive(serverDir));
      const archive = (await docker.getImage(imageId).get()) as unknown as NodeJS.ReadableStream;
      leakScan = await scanImageArchive(archive as never, digests, signal);
      if (leakScan.leaks.length > 0) {
        await docker.getImage(imageId).remove({ force: true }).catch(() => undefined);
        const first = leakScan.leaks[0];
        throw new RefusedError('leak', `${rendered.names.stem}: licensed file ${first.path} is in layer ${first.layer} (${first.why}); the image was removed`, {
          hint: `${leakScan.leaks.length} leaked entr${leakScan.leaks.length === 1 ? 'y' : 'ies'}: ${leakScan.leaks.slice(0, 5).map((l) => l.path).join(', ')}; run $REMOVE_CRAY_DEPS in the same RUN that fetched them`,
        });
      }
    }
    const { leaks: _leaks, ...scanFigures } = leakScan ?? { leaks: [] };
    return {
      imageId,
      dockerhash: dockerhashOf(imageId),
      tag,
      definitionHash: rendered.definitionHash,
      size: info.Size,
      durationMs: Date.now() - started,
      reused: false,
      logPath,
      accessLogPath: server ? accessLogPath : undefined,
      leakScan: leakScan ? (scanFigures as Omit<LeakScanResult, 'leaks'>) : undefined,
    };
  } catch (e) {
    await removeQuietly(docker, parser.containers);
    if (signal.aborted && !(e instanceof InterruptedError)) throw new InterruptedError('build interrupted', { cause: e });
    throw e;
  } finally {
    await new Promise<void>((r) => log.end(r));
    await server?.close();
  }
}
