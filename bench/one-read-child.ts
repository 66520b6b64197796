/**
 * One read of an engine image (scan + archive + SIF, convert/one-read.ts),
 * in a process of its own so its peak memory (VmHWM) is the read's alone.
 * Prints one JSON line: seconds, archive and SIF sizes, and the seconds
 * until the stream was in (read, archive synced, scan judged): what the
 * conversion does after that (the tables, or the whole mksquashfs when it
 * converts in two passes) is the rest. `fallback`: why it took two passes.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connectEngine } from '../src/engine/client';
import { servedDigests } from '../src/fileserver/leakscan';
import { saveScanConvert } from '../src/convert/one-read';

async function main(): Promise<void> {
  const [image, archive, sif] = process.argv.slice(2);
  const engine = await connectEngine();
  const imageId = (await engine.inspectImage(image)).id;
  const started = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - started) / 1e9;
  let streamEnd: number | undefined;
  let fallback: string | undefined;
  // A served directory of two made-up licensed files, read as a build reads its own (digests and sizes).
  const served = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-bench-served-'));
  await fs.writeFile(path.join(served, 'libcray.so'), randomBytes(300_000));
  await fs.writeFile(path.join(served, 'cpe.conf'), randomBytes(1_234));
  const { digests, sizes } = await servedDigests(served, ['libcray.so', 'cpe.conf']);
  await fs.rm(served, { recursive: true });
  const r = await saveScanConvert(engine, imageId, {
    signal: new AbortController().signal,
    archive,
    sif,
    needles: { digests, sizes, serverPort: 20000 },
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
