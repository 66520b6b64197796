/**
 * One leak scan of an engine image, in a process of its own so its peak
 * memory (VmHWM) is the scan's alone. Prints one JSON line.
 */
import Docker from 'dockerode';
import type { Readable } from 'node:stream';
import { scanImageArchive } from '../src/fileserver/leakscan';

async function main(): Promise<void> {
  const image = process.argv[2];
  const docker = new Docker();
  const started = process.hrtime.bigint();
  // A few made-up digests: the scan compares every file's digest with them, as in a build.
  const digests = new Map([
    ['0'.repeat(64), 'x'],
    ['f'.repeat(64), 'y'],
  ]);
  const result = await scanImageArchive((await docker.getImage(image).get()) as unknown as Readable, {
    digests,
    serverPort: 20000,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(
    JSON.stringify({
      seconds,
      bytes: result.bytes,
      files: result.files,
      layers: result.layers,
      leaks: result.leaks.length,
    }) + '\n',
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
