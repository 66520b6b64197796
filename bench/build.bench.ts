import { execFile, execSync } from 'node:child_process';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { contextTar } from '../src/engine/context';
import { startFileServer } from '../src/fileserver/server';
import { listContext } from '../src/recipe/load';
import { timed, type Figure } from './table';

function counter(): Writable & { bytes: number } {
  const w = new Writable({
    write(c, _e, cb) {
      w.bytes += c.length;
      cb();
    },
  }) as Writable & { bytes: number };
  w.bytes = 0;
  return w;
}

/** A context of `gib` GiB in 8 files of random data (made once, outside the timing). */
async function makeContext(gib: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-bench-ctx-'));
  const per = Math.round((gib * 1024) / 8);
  for (let i = 0; i < 8; i++) execSync(`head -c ${per}M /dev/urandom > ${path.join(dir, `blob${i}.bin`)}`);
  return dir;
}

export async function buildBenches(gib: number): Promise<Figure[]> {
  const dir = await makeContext(gib);
  try {
    // Warm the page cache for both sides alike.
    execSync(`cat ${dir}/* > /dev/null`);
    const [base] = await timed(async () => execSync(`tar -C ${dir} -c . | wc -c`));
    const [ours] = await timed(async () => {
      const files = await listContext(dir);
      await pipeline(contextTar('FROM scratch\n', files), counter());
    });
    const mib = gib * 1024;

    const file = path.join(dir, 'blob0.bin');
    const size = (await fs.stat(file)).size;
    const [read] = await timed(() => pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), counter()));
    const server = await startFileServer(dir);
    // curl as the client, as in a build: a separate process, like the engine's RUN step.
    const [served] = await timed(
      () =>
        new Promise<void>((resolve, reject) => {
          execFile('curl', ['-fsS', '-o', '/dev/null', `${server.url}blob0.bin`], (e) =>
            e ? reject(e as Error) : resolve(),
          );
        }),
    );
    await server.close();
    const fileMib = size / 1048576;
    return [
      {
        figure: `context tar stream, ${gib} GiB (MiB/s; baseline tar -c | wc -c)`,
        sifkit: mib / ours,
        baseline: mib / base,
        unit: 'MiB/s',
        target: 'ratio >= 0.8',
        met: base / ours >= 0.8,
      },
      {
        figure: `file server over loopback, ${fileMib.toFixed(0)} MiB file (MiB/s; baseline fs read)`,
        sifkit: fileMib / served,
        baseline: fileMib / read,
        unit: 'MiB/s',
        target: '>= 300 MiB/s',
        met: fileMib / served >= 300,
      },
    ];
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
