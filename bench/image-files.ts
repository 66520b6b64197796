/**
 * Are two engine images the same, file for file? Lists each image's
 * filesystem (a container's `docker export`, never started) as path, type,
 * mode, owner, size, sha256 and link target, without mtimes, and prints
 * what differs. Used to show that building a component in a stage of its
 * own and copying it in (issue 27.3) leaves the image as it was:
 *
 *   node dist/bench/image-files.js IMAGE_BEFORE IMAGE_AFTER
 *
 * A timestamp-based .pyc holds its source's mtime in bytes 8-11 (PEP 552):
 * that field is compared apart, as a difference by nature, and counted.
 * The images' ENV, entrypoint, command, user and working directory are
 * compared too. Exit 0 when nothing but those timestamps differs, else 1.
 */
import { createHash } from 'node:crypto';
import Docker from 'dockerode';
import * as tar from 'tar-stream';

interface Entry {
  /** Everything compared, in one line. */
  line: string;
  /** A .pyc whose only difference may be its source timestamp: the line with that field zeroed. */
  pycWithoutTime?: string;
}

async function listImage(docker: Docker, image: string): Promise<Map<string, Entry>> {
  const c = await docker.createContainer({ Image: image, Cmd: ['/nonexistent-never-started'] });
  const out = new Map<string, Entry>();
  try {
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (d: unknown) => chunks.push(d as Buffer));
      stream.on('end', () => {
        const data = Buffer.concat(chunks);
        const head = `${h.name}\t${h.type}\t${(h.mode ?? 0).toString(8)}\t${h.uid}:${h.gid}\t${h.size ?? 0}\t${h.linkname ?? ''}`;
        const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
        const entry: Entry = { line: `${head}\t${sha(data)}` };
        if (h.name.endsWith('.pyc') && data.length >= 16 && data.readUInt32LE(4) === 0) {
          const zeroed = Buffer.from(data);
          zeroed.fill(0, 8, 12);
          entry.pycWithoutTime = `${head}\t${sha(zeroed)}`;
        }
        out.set(h.name, entry);
        next();
      });
      stream.resume();
    });
    const done = new Promise<void>((resolve, reject) => {
      extract.on('finish', resolve);
      extract.on('error', reject);
    });
    (await c.export()).pipe(extract);
    await done;
  } finally {
    await c.remove({ force: true });
  }
  return out;
}

async function configOf(docker: Docker, image: string): Promise<string> {
  const cfg = (await docker.getImage(image).inspect()).Config;
  return JSON.stringify([cfg.Env, cfg.Entrypoint, cfg.Cmd, cfg.User, cfg.WorkingDir]);
}

async function main(): Promise<void> {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) {
    console.error('usage: image-files IMAGE_BEFORE IMAGE_AFTER');
    process.exit(2);
  }
  const docker = new Docker();
  const [la, lb] = [await listImage(docker, a), await listImage(docker, b)];
  const differ: string[] = [];
  let pycTimes = 0;
  for (const p of new Set([...la.keys(), ...lb.keys()])) {
    const x = la.get(p);
    const y = lb.get(p);
    if (x?.line === y?.line) continue;
    if (x?.pycWithoutTime !== undefined && x.pycWithoutTime === y?.pycWithoutTime) pycTimes += 1;
    else differ.push(`${p}: ${x ? x.line : '(absent)'} | ${y ? y.line : '(absent)'}`);
  }
  const config = (await configOf(docker, a)) === (await configOf(docker, b));
  console.log(`${a}: ${la.size} paths; ${b}: ${lb.size} paths`);
  console.log(`differing in a .pyc's source timestamp only: ${pycTimes}`);
  console.log(`differing otherwise: ${differ.length}`);
  for (const d of differ.slice(0, 50)) console.log(`  ${d}`);
  console.log(`ENV, entrypoint, command, user, working directory: ${config ? 'the same' : 'DIFFERENT'}`);
  process.exit(differ.length === 0 && config ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
