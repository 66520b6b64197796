/**
 * One file server per served digest, shared by the builds of a run.
 *
 * A build passes the port the server listens on as `SERVER_PORT`, and the
 * engine's cache keys every step after that `ARG` by it. Two builds of the
 * same served files running at once (build slots, or two engines on one
 * host) each starting a server would race for the port derived from the
 * digest: the second would fall back to another port and miss the cache of
 * every fetching step. So a run's builds lease the server instead: the
 * first lease of a digest starts it, the others join it, each adding the
 * sources it declares (the server serves their union, each checked by
 * digest before it is added) and its own access log; the last release
 * stops it. Releases run in the builds' `finally`, so a failed or
 * interrupted build lets go too, and no server outlives the builds using
 * it. A server is shared only with the same directory and the same allowed
 * uids: sharing never lets in anyone a build would not.
 */
import { startFileServer, type FileServer, type ServedEntry } from './server';

export interface LeaseRequest {
  /** The served directory (none: sources only). */
  dir?: string;
  /** Its digest (servedFilesDigest, or digestOfServed([]) with no directory): the key, and the port it derives. */
  digest: string;
  preferredPort: number;
  /** A port the build insists on (taken or fail); a server is shared only on the same one. */
  port?: number;
  /** Uids whose sockets may fetch (default [0]). */
  allowUids?: number[];
  /** The sources this build declares, served beside the directory while it holds the lease. */
  extra: ServedEntry[];
  /** This build's access log, and its name in the other builds' logs. */
  logFile: string;
  who: string;
}

export interface ServerLease {
  port: number;
  /** True when the derived port was busy when the server started (the fetching steps miss the cache). */
  portFallback: boolean;
  url: string;
  /** Lets go: this build's sources and log leave the server, and the last lease stops it. */
  release(): Promise<void>;
}

export interface FileServers {
  lease(req: LeaseRequest): Promise<ServerLease>;
  /** Servers listening now (for tests and messages). */
  readonly open: number;
}

interface Shared {
  server: Promise<FileServer>;
  holders: number;
}

/** A pool of shared servers; one per run (the pipeline's run state), or one per standalone build. */
export function newFileServers(): FileServers {
  const shared = new Map<string, Shared>();
  // A server being stopped still holds its port: the next start of that key waits for it.
  const stopping = new Map<string, Promise<void>>();
  const keyOf = (r: LeaseRequest) =>
    JSON.stringify([r.digest, r.dir ?? null, r.port ?? null, [...new Set(r.allowUids ?? [0])].sort((a, b) => a - b)]);

  const leave = async (key: string, entry: Shared, server: FileServer): Promise<void> => {
    if (--entry.holders > 0) return;
    shared.delete(key);
    const stopped = server.close().finally(() => {
      if (stopping.get(key) === stopped) stopping.delete(key);
    });
    stopping.set(key, stopped);
    await stopped;
  };

  return {
    get open() {
      return shared.size;
    },
    async lease(req) {
      const key = keyOf(req);
      let entry = shared.get(key);
      if (!entry) {
        const before = stopping.get(key) ?? Promise.resolve();
        entry = {
          holders: 0,
          server: before.then(() =>
            startFileServer(req.dir, { port: req.port, preferredPort: req.preferredPort, allowUids: req.allowUids }),
          ),
        };
        shared.set(key, entry);
      }
      const held = entry;
      held.holders++;
      let server: FileServer;
      try {
        server = await held.server;
      } catch (e) {
        // Not started: the next lease tries again.
        if (--held.holders === 0 && shared.get(key) === held) shared.delete(key);
        throw e;
      }
      const dropEntries = server.addEntries(req.extra);
      let detach: () => Promise<void>;
      try {
        detach = await server.attachLog(req.logFile, req.who);
      } catch (e) {
        dropEntries();
        await leave(key, held, server);
        throw e;
      }
      let released = false;
      return {
        port: server.port,
        portFallback: server.portFallback,
        url: server.url,
        async release() {
          if (released) return;
          released = true;
          dropEntries();
          await detach();
          await leave(key, held, server);
        },
      };
    },
  };
}
