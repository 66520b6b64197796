/**
 * The fetch bench's upstream, in a process of its own (so it does not share
 * the client's event loop): serves the files of one directory over HTTP on
 * 127.0.0.1, at most RATE bytes per second in all, whatever the number of
 * connections, as a real upstream's link would. The limit is a token
 * bucket held by the server, so it limits curl and fetch alike (curl's
 * --limit-rate would limit only the client it is given to). RATE 0 serves
 * as fast as the loopback goes.
 *
 *   node dist/bench/throttled-server.js DIR RATE
 *
 * Prints the port it listens on, one line, once it listens.
 */
import { createReadStream, promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Read and sent in pieces of this size: each waits for its tokens. */
const PIECE = 64 << 10;
/** The bucket's depth: at most this many milliseconds of the rate go out at once after a pause. */
const BURST_MS = 10;

/**
 * A token bucket as one virtual clock: `next` is when the next byte may go.
 * Each piece books its time at the rate; a piece booked in the future waits
 * until then. A late wake-up does not lower the rate on average: the
 * following pieces were booked already and go at once.
 */
function bucket(rate: number): (n: number) => Promise<void> {
  let next = performance.now();
  return async (n) => {
    if (rate <= 0) return;
    const now = performance.now();
    next = Math.max(next, now - BURST_MS);
    const at = next;
    next += (n / rate) * 1000;
    if (at > now) await sleep(at - now);
  };
}

/** Resolves when the socket takes more (drain) or the client is gone (close), whichever comes first. */
function roomIn(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const go = () => {
      res.off('drain', go).off('close', go);
      resolve();
    };
    res.on('drain', go).on('close', go);
  });
}

async function main(): Promise<void> {
  const [dir, rateArg] = process.argv.slice(2);
  const rate = Number(rateArg);
  if (!dir || !Number.isFinite(rate) || rate < 0)
    throw new Error('usage: throttled-server DIR RATE (bytes/s, 0: no limit)');
  const take = bucket(rate);
  const server = http.createServer((req, res) => {
    const name = path.basename(decodeURIComponent((req.url ?? '/').split('?')[0]));
    const file = path.join(dir, name);
    void (async () => {
      const stat = await fs.stat(file).catch(() => undefined);
      if (req.method !== 'GET' || !stat?.isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': stat.size });
      for await (const piece of createReadStream(file, { highWaterMark: PIECE })) {
        await take((piece as Buffer).length);
        if (!res.write(piece)) await roomIn(res);
        if (res.destroyed) return;
      }
      res.end();
    })().catch((e: Error) => res.destroy(e));
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
