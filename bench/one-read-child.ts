/**
 * One read of an engine image (scan + archive + SIF, convert/one-read.ts),
 * in a process of its own so its peak memory (VmHWM) is the read's alone.
 * Prints one JSON line: seconds, archive and SIF sizes, and the seconds
 * until the stream was in (read, archive synced, scan judged): what the
 * conversion does after that (the tables, or the whole mksquashfs when it
 * converts in two passes) is the rest. `fallback`: why it took two passes.
 */
import { connectEngine } from '../src/engine/client';
import { saveScanConvert } from '../src/convert/one-read';

async function main(): Promise<void> {
  const [image, archive, sif] = process.argv.slice(2);
  const engine = await connectEngine();
  const imageId = (await engine.inspectImage(image)).id;
  const started = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - started) / 1e9;
  let streamEnd: number | undefined;
  let fallback: string | undefined;
  // Made-up digests: the scan compares every file's digest with them, as in a build.
  const digests = new Map([
    ['0'.repeat(64), 'x'],
    ['f'.repeat(64), 'y'],
  ]);
  const r = await saveScanConvert(engine, imageId, {
    signal: new AbortController().signal,
    archive,
    sif,
    needles: { digests, serverPort: 20000 },
    source: { bootstrap: 'docker-daemon', from: imageId },
    onProgress: (line) => {
      if (line.startsWith('mksquashfs') || line.startsWith('squashfs tables')) streamEnd = since();
      if (line.startsWith('converted in two passes: ')) fallback = line.slice('converted in two passes: '.length);
    },
  });
  const seconds = since();
  process.stdout.write(
    JSON.stringify({ seconds, streamEnd, fallback, archive: r.archiveSize, sif: Number(r.convert?.sif.fileSize) }) +
      '\n',
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
