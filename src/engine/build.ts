/**
 * Builds one rendered variant through the Engine API: reuse by definition
 * hash, the context streamed as a tar, licensed files served for the
 * build's duration, the build stream parsed for errors, the image scanned
 * for leaks. Containers and half-built images do not outlive a failure.
 *
 * The image is built untagged and tagged only once its scan passed and the
 * verdict is recorded against its ID (verdict.ts): a scan that fails,
 * errors or is interrupted leaves no tagged image, and reuse asks for the
 * verdict, so the next build scans (or rebuilds) it first.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errnoCode, InterruptedError, isSifkitError, OperationError, RefusedError } from '../errors';
import type { ServedEntry } from '../fileserver/server';
import { newFileServers, type FileServers } from '../fileserver/shared';
import { defaultSourceCache, ensureSources } from '../sources/cache';
import {
  scanImageArchive,
  servedDigests,
  toolDigests,
  type LeakScanResult,
  type ScanNeedles,
} from '../fileserver/leakscan';
import { classifyServed, describeToolProblem } from '../fileserver/roles';
import { rolesKey, type ServedFile } from '../recipe/served';
import { derivePort, listServedFiles, servedBuildArgs, servedFilesDigest } from '../fileserver/served';
import { badServerDir, servedDigestOf, servingPlan } from '../fileserver/serving';
import { defaultVerdictDir, readVerdict, recordVerdict, SCANNER_VERSION, verdictHolds } from './verdict';
import { dockerhashOf, imageTag } from '../recipe/names';
import type { RenderedVariant } from '../recipe/render';
import type { Recipe } from '../recipe/types';
import { contextTar } from './context';
import { buildFacts, type BuildRecord } from './build-record';
import type { ImageDetails, ImageEngine } from './engine';
import { findByDefinitionHash, tagBoth } from './image-tags';
import { buildFailure, BuildStreamParser, followBuild } from './progress';

export interface BuildOptions {
  recipe: Recipe;
  rendered: RenderedVariant;
  /** Directory of served files (licensed files and tools); defaults to the recipe's own, needed only when the variant declares served files. */
  serverFiles?: string;
  rebuild?: boolean;
  logDir: string;
  signal: AbortSignal;
  /** Extra labels set through the API (tests mark what they create). */
  extraLabels?: Record<string, string>;
  onProgress?: (line: string) => void;
  /** The file server's port (default: derived from the served files, a free one when busy). */
  serverPort?: number;
  /** Uids whose sockets may fetch served files (default [0], the engine's build containers). */
  serverUids?: number[];
  /**
   * The file servers of the run this build is part of, shared by its
   * builds of the same served files (fileserver/shared.ts); default: one
   * of its own, stopped when the build ends.
   */
  fileServers?: FileServers;
  /** The served directory's digest, when the caller has it (a run hashes its directory once). */
  servedDirDigest?: string;
  /** Where scan verdicts are kept (default: defaultVerdictDir()). */
  verdictDir?: string;
  /** The source cache declared sources are served from (default: defaultSourceCache()). */
  sourceCache?: string;
  /** Refuse a source missing from the cache instead of fetching it first. */
  offline?: boolean;
  /** Images moved here from another engine (pipeline/prefix-move.ts) whose steps the build may take. */
  cacheFrom?: string[];
  /**
   * Given: the build neither scans nor tags a new (or never judged) image;
   * it hands what the scan needs to this, whose caller reads the image once
   * for scan, archive and SIF (convert/one-read.ts) and calls
   * judgeDeferredScan before any use.
   */
  deferScan?: (pending: PendingScan) => void;
}

async function removeQuietly(engine: ImageEngine, ids: Iterable<string>): Promise<void> {
  for (const id of ids) await engine.removeContainer(id).catch(() => undefined);
}

interface ScanContext {
  engine: ImageEngine;
  stem: string;
  serverDir?: string;
  servedDigest?: string;
  /** The variant's served files with their roles (undeclared ones are licensed). */
  served: ServedFile[];
  serverPort?: number;
  verdictDir: string;
  signal: AbortSignal;
  onProgress?: (line: string) => void;
}

/** What one build's leak scan looks for, and how its verdict is kept. */
export interface ScanPlan {
  stem: string;
  needles: ScanNeedles;
  servedDigest?: string;
  /** rolesKey of the variant's served files. */
  roles: string;
  verdictDir: string;
}

/**
 * A built image whose scan the build left to its caller (`deferScan`):
 * untagged, no verdict, so nothing uses it until `judgeDeferredScan`
 * passes it.
 */
export interface PendingScan {
  imageId: string;
  tag: string;
  plan: ScanPlan;
}

async function planScan(ctx: ScanContext): Promise<ScanPlan> {
  const roles = classifyServed(ctx.serverDir ? await listServedFiles(ctx.serverDir) : [], ctx.served);
  const { digests, sizes } = ctx.serverDir
    ? await servedDigests(ctx.serverDir, roles.licensed)
    : { digests: new Map<string, string>(), sizes: new Set<number>() };
  const tools = ctx.serverDir ? await toolDigests(ctx.serverDir, roles.tools) : [];
  return {
    stem: ctx.stem,
    needles: { digests, sizes, tools, serverPort: ctx.serverPort },
    servedDigest: ctx.servedDigest,
    roles: rolesKey(ctx.served),
    verdictDir: ctx.verdictDir,
  };
}

/**
 * Records the verdict of a finished scan against the image's ID. A leak
 * records a failed verdict, removes the image and refuses; an error or
 * interrupt before this point records nothing, so the image stays unusable.
 */
async function judgeScan(
  engine: ImageEngine,
  plan: ScanPlan,
  imageId: string,
  scan: LeakScanResult,
): Promise<Omit<LeakScanResult, 'leaks' | 'toolProblems'>> {
  const { leaks, toolProblems, ...figures } = scan;
  const verdict = {
    imageId,
    scanner: SCANNER_VERSION,
    servedDigest: plan.servedDigest,
    roles: plan.roles,
    scannedAt: new Date().toISOString(),
    ...figures,
  };
  if (leaks.length > 0) {
    const first = leaks[0];
    const reason = `${first.layer === 'image config' ? `the image config's ${first.path}` : `licensed file ${first.path} is in layer ${first.layer}`} (${first.why})`;
    await recordVerdict(plan.verdictDir, { ...verdict, passed: false, reason });
    await engine.removeImage(imageId).catch(() => undefined);
    throw new RefusedError('leak', `${plan.stem}: ${reason}; the image was removed`, {
      hint: `${leaks.length} leak${leaks.length === 1 ? '' : 's'}: ${leaks
        .slice(0, 5)
        .map((l) => `${l.path} (${l.why})`)
        .join(
          ', ',
        )}; run $REMOVE_CRAY_DEPS in the same RUN that fetched them, and compose the server URL inside the RUN, never in ENV or LABEL`,
    });
  }
  if (toolProblems.length > 0) {
    // Not a leak, but not the image the recipe declares either: never tagged, never reused.
    const reason = describeToolProblem(toolProblems[0]);
    await recordVerdict(plan.verdictDir, { ...verdict, passed: false, reason });
    await engine.removeImage(imageId).catch(() => undefined);
    throw new OperationError('served-tool', `${plan.stem}: ${reason}; the image was removed`, {
      hint:
        toolProblems.length > 1
          ? `also: ${toolProblems.slice(1, 5).map(describeToolProblem).join('; ')}`
          : 'a served tool stays only at the path the recipe declares for it (served: role tool, path)',
    });
  }
  await recordVerdict(plan.verdictDir, { ...verdict, passed: true });
  return figures;
}

/** Scans an image (its own `docker save`) and records the verdict against its ID. */
async function scanAndJudge(
  ctx: ScanContext,
  imageId: string,
): Promise<Omit<LeakScanResult, 'leaks' | 'toolProblems'>> {
  ctx.onProgress?.('scanning layers, config and history for served files');
  const plan = await planScan(ctx);
  const archive = await ctx.engine.saveImage(imageId);
  return judgeScan(ctx.engine, plan, imageId, await scanImageArchive(archive as never, plan.needles, ctx.signal));
}

/**
 * Judges a deferred scan, done by the caller over its own read of the
 * image, and tags the image once it passed, as a build that scans does.
 */
export async function judgeDeferredScan(
  engine: ImageEngine,
  pending: PendingScan,
  scan: LeakScanResult,
): Promise<Omit<LeakScanResult, 'leaks' | 'toolProblems'>> {
  const figures = await judgeScan(engine, pending.plan, pending.imageId, scan);
  await tagBoth(engine, pending.imageId, pending.tag);
  return figures;
}

export async function buildVariant(engine: ImageEngine, opts: BuildOptions): Promise<BuildRecord> {
  const { rendered, signal } = opts;
  const started = Date.now();
  const tag = rendered.names.tag;
  const verdictDir = opts.verdictDir ?? defaultVerdictDir();
  /** The record of the image this build gives, built or reused: the same fields whichever way it came. */
  const record = async (
    id: string,
    size: number,
    how: Pick<BuildRecord, 'reused' | 'logPath' | 'accessLogPath' | 'leakScan'>,
    info?: ImageDetails,
  ): Promise<BuildRecord> => ({
    imageId: id,
    dockerhash: dockerhashOf(id),
    tag,
    imageTag: imageTag(tag, dockerhashOf(id)),
    definitionHash: rendered.definitionHash,
    size,
    durationMs: Date.now() - started,
    ...how,
    ...(await buildFacts(engine, rendered, id, signal, info)),
  });

  // The served directory only when the variant declares served files; sources come from the cache.
  const serving = servingPlan(opts.recipe, rendered, opts.serverFiles);
  const serverDir = serving.dir;
  const dirDigest =
    serverDir === undefined
      ? undefined
      : (opts.servedDirDigest ??
        (await servedFilesDigest(serverDir, signal).catch((e) => {
          throw isSifkitError(e) ? e : badServerDir(serving, errnoCode(e) ?? (e as Error).message);
        })));
  // Before building: a declared tool absent from the directory is refused here, not found missing after.
  if (serverDir !== undefined) classifyServed(await listServedFiles(serverDir), rendered.served);
  // Sources only: the digest of no served files, the same for every such build, so its port
  // and SERVED_DIGEST (and the cache of the steps after them) are too.
  const servedDigest = servedDigestOf(serving, dirDigest);
  // The port a build of these files would be served on (the actual one once serving).
  const scanCtx: ScanContext = {
    engine,
    stem: rendered.names.stem,
    serverDir,
    servedDigest,
    served: rendered.served,
    serverPort: opts.serverPort ?? (servedDigest ? derivePort(servedDigest) : undefined),
    verdictDir,
    signal,
    onProgress: opts.onProgress,
  };

  if (!opts.rebuild) {
    const found = await findByDefinitionHash(engine, rendered.definitionHash, rendered.names.stem);
    if (found.length > 0) {
      const img = found.sort((a, b) => b.created - a.created)[0];
      const held = verdictHolds(await readVerdict(verdictDir, img.id), img.id, {
        digest: servedDigest,
        roles: rolesKey(rendered.served),
      });
      if (!held && opts.deferScan) {
        opts.deferScan({ imageId: img.id, tag, plan: await planScan(scanCtx) });
        opts.onProgress?.(`reusing ${dockerhashOf(img.id)}: same definition hash, scan to come`);
        return record(img.id, img.size, { reused: true });
      }
      // Never scanned to the end (interrupted, errored) or scanned for other files: scan it now.
      const leakScan = held ? undefined : await scanAndJudge(scanCtx, img.id);
      await tagBoth(engine, img.id, tag, img.repoTags);
      opts.onProgress?.(
        `reusing ${dockerhashOf(img.id)}: same definition hash, ${held ? 'scan passed before' : 'scan passed now'}`,
      );
      return record(img.id, img.size, { reused: true, leakScan });
    }
  }

  // Every declared source from the cache, its digest checked now: a missing
  // one is fetched (or refused offline), a tampered one refused, all before
  // the engine sees the definition.
  const sources: ServedEntry[] = rendered.sources?.length
    ? (
        await ensureSources(rendered.sources, {
          cache: opts.sourceCache ?? defaultSourceCache(),
          recipeDir: opts.recipe.dir,
          offline: opts.offline,
          signal,
          onProgress: opts.onProgress,
        })
      ).map((s) => ({ ...s, role: 'source' as const }))
    : [];
  await fs.mkdir(opts.logDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const logPath = path.join(opts.logDir, `${rendered.names.stem}-${stamp}.build.log`);
  const accessLogPath = path.join(opts.logDir, `${rendered.names.stem}-${stamp}.access.log`);
  // The run's server of these files, started by its first build and shared by the rest.
  const server =
    servedDigest === undefined
      ? undefined
      : await (opts.fileServers ?? newFileServers()).lease({
          dir: serverDir,
          digest: servedDigest,
          port: opts.serverPort,
          preferredPort: derivePort(servedDigest),
          allowUids: opts.serverUids,
          extra: sources,
          logFile: accessLogPath,
          who: rendered.names.stem,
        });
  if (server?.portFallback)
    opts.onProgress?.(
      `port ${derivePort(servedDigest ?? '')} is busy: serving on ${server.port}, so the steps that fetch will not come from the cache`,
    );
  scanCtx.serverPort = server?.port;
  const log = createWriteStream(logPath);
  const parser = new BuildStreamParser();
  let imageId: string | undefined;
  try {
    // Both stable for the same served files: they keep the cache of the
    // steps that see them, and no step before their ARG sees them at all.
    const buildargs = server && servedDigest ? servedBuildArgs(servedDigest, server.port) : {};
    const stream = await engine.build({
      // The entries the render listed and hashed, not a second listing.
      context: contextTar(rendered.dockerfile, rendered.context, signal),
      // Untagged until the scan passed.
      buildargs,
      labels: opts.extraLabels,
      // The file server listens on the host's loopback: the build must share its network.
      networkMode: 'host',
      noCache: Boolean(opts.rebuild),
      ...(opts.cacheFrom?.length && { cacheFrom: opts.cacheFrom }),
      signal,
    });
    await followBuild(stream, parser, log, signal, opts.onProgress);
    const failure = buildFailure(parser, rendered.names.stem, logPath);
    if (failure) throw failure;
    imageId = parser.imageId!;
    const info = await engine.inspectImage(imageId);
    imageId = info.id;

    let leakScan: BuildRecord['leakScan'];
    if (opts.deferScan) opts.deferScan({ imageId, tag, plan: await planScan(scanCtx) });
    else {
      leakScan = await scanAndJudge(scanCtx, imageId);
      await tagBoth(engine, imageId, tag);
    }
    return record(
      imageId,
      info.size,
      { reused: false, logPath, accessLogPath: server ? accessLogPath : undefined, leakScan },
      info,
    );
  } catch (e) {
    await removeQuietly(engine, parser.containers);
    if (signal.aborted && !(e instanceof InterruptedError))
      throw new InterruptedError('build interrupted', { cause: e });
    throw e;
  } finally {
    await new Promise<void>((r) => log.end(r));
    await server?.release();
  }
}
