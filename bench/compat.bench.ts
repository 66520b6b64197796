/**
 * Host compatibility at scale, beside its baseline in the same run:
 *  - one large SIF (the convert bench's test image, SIFKIT_BENCH_COMPAT_GIB,
 *    default 1) checked against a snapshot of this host, against the time
 *    `unsquashfs -l` takes to list it (target: at most 2x);
 *  - the floor of any reader beside it: the listing plus zlib inflating
 *    exactly the data and fragment blocks (or block prefixes) the read
 *    decodes, nothing else (no walk, no ELF parse, no I/O wait). A listing
 *    reads no file data; a check must inflate the fragment blocks its ELF
 *    files lie in, as far as the last of them;
 *  - a tree of 200 promoted images (hard links to one SIF, so one content:
 *    checked once; SIFKIT_BENCH_COMPAT_TREE_SIF, default the large one)
 *    against a snapshot (target: at most 60 s), beside one image alone.
 */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { constants as zc, inflateSync } from 'node:zlib';
import * as os from 'node:os';
import * as path from 'node:path';
import { sifImageFiles, unsquashfsFiles } from '../src/compat/image';
import { squashImageFiles } from '../src/compat/squash-files';
import { Squashfs, type ByteSource } from '../src/squashfs/format';
import { benchImage } from './convert.bench';
import { timed, type Figure } from './table';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

function cli(args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CI: '1' },
    maxBuffer: 1 << 28,
  });
}

function partitionOffset(sif: string): number {
  return JSON.parse(cli(['inspect', sif, '--json'])).partition.offset;
}

/**
 * The compressed bytes of every data and fragment block (or block
 * prefix) sifkit's read decodes, recorded by reading through a byte
 * source that keeps them (the metadata tables, read at open, are the
 * listing's part and not kept).
 */
async function blocksRead(sif: string, offset: number): Promise<{ blocks: Buffer[]; blockSize: number }> {
  const fh = await fs.open(sif, 'r');
  try {
    const kept: Buffer[] = [];
    let dataEnd = 0;
    const src: ByteSource = {
      size: (await fh.stat()).size - offset,
      read: async (at, length) => {
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset + at);
        if (at >= 96 && at + length <= dataEnd) kept.push(buf.subarray(0, bytesRead));
        return buf.subarray(0, bytesRead);
      },
    };
    const sq = await Squashfs.open(src);
    dataEnd = sq.sb.inodeTable;
    await squashImageFiles(sq, { name: sif });
    return { blocks: kept, blockSize: sq.sb.blockSize };
  } finally {
    await fh.close();
  }
}

/** Seconds zlib takes to inflate `blocks` (a prefix as far as it goes; a block stored uncompressed is copied). */
function inflateSecs(blocks: Buffer[], blockSize: number): { secs: number; out: number } {
  let out = 0;
  const t = process.hrtime.bigint();
  for (const b of blocks) {
    try {
      out += inflateSync(b, { maxOutputLength: blockSize, chunkSize: blockSize, finishFlush: zc.Z_SYNC_FLUSH }).length;
    } catch {
      out += b.length;
    }
  }
  return { secs: Number(process.hrtime.bigint() - t) / 1e9, out };
}

export async function compatBenches(): Promise<Figure[]> {
  const gib = Number(process.env.SIFKIT_BENCH_COMPAT_GIB ?? '1');
  const root = process.env.SIFKIT_BENCH_DIR ?? os.tmpdir();
  const work = await fs.mkdtemp(path.join(root, 'sifkit-bench-compat-'));
  const figures: Figure[] = [];
  try {
    // SIFKIT_BENCH_COMPAT_SIF: an existing SIF to measure instead of the convert bench's image.
    const sif = process.env.SIFKIT_BENCH_COMPAT_SIF ?? path.join(root, `sifkit-bench-compat-${gib}g-v1.sif`);
    if (!existsSync(sif)) {
      const image = benchImage(gib);
      console.error(`converting ${image} to ${sif} (once)…`);
      cli(['convert', `docker-daemon:${image}`, '-o', sif]);
    }
    const snap = path.join(work, 'here.json');
    cli([
      'host',
      'snapshot',
      '--bind',
      '/usr/lib/x86_64-linux-gnu/libz.so.1:/usr/lib/x86_64-linux-gnu/libz.so.1',
      '-o',
      snap,
    ]);
    const offset = String(partitionOffset(sif));
    // Untimed first runs: both read the same file through the same page cache.
    execSync(`unsquashfs -o ${offset} -l ${sif} > /dev/null`);
    const [listSecs] = await timed(async () => execSync(`unsquashfs -o ${offset} -l ${sif} > /dev/null`));
    const [ours, out] = await timed(async () => cli(['compat', sif, '--host', snap, '--json']));
    const objects = JSON.parse(out).reports[0].objects;
    const size = (await fs.stat(sif)).size / 2 ** 30;
    figures.push({
      figure: `compat of a ${size.toFixed(1)} GiB SIF, ${objects} ELF objects (s; baseline unsquashfs -l)`,
      sifkit: ours,
      baseline: listSecs,
      unit: 's',
      target: 'ratio <= 2',
      met: ours / listSecs <= 2,
    });

    // In process, without Node's start: the read alone (sifkit's squashfs reader), against the
    // listing, and against the same read through unsquashfs -lln and -cat (the reader it replaced).
    const [readSecs] = await timed(() => sifImageFiles(sif));
    figures.push({
      figure: `compat's read of that SIF in process, squashfs reader (s; baseline unsquashfs -l)`,
      sifkit: readSecs,
      baseline: listSecs,
      unit: 's',
      target: 'ratio <= 2',
      met: readSecs / listSecs <= 2,
    });
    // The floor: the listing, plus inflating what the read must decode (warm: the second of two passes).
    const { blocks, blockSize } = await blocksRead(sif, Number(offset));
    inflateSecs(blocks, blockSize);
    const zlib = inflateSecs(blocks, blockSize);
    const inMiB = blocks.reduce((a, b) => a + b.length, 0) / 2 ** 20;
    figures.push({
      figure: `floor of any reader (one thread, zlib): unsquashfs -l + inflating the ${blocks.length} blocks the read decodes (${inMiB.toFixed(1)} MiB in, ${(zlib.out / 2 ** 20).toFixed(1)} MiB out) (s; baseline unsquashfs -l)`,
      sifkit: listSecs + zlib.secs,
      baseline: listSecs,
      unit: 's',
      target: 'ratio <= 2',
      met: (listSecs + zlib.secs) / listSecs <= 2,
    });
    figures.push({
      figure: `compat's read of that SIF in process, squashfs reader (s; baseline the floor above)`,
      sifkit: readSecs,
      baseline: listSecs + zlib.secs,
      unit: 's',
      target: 'ratio: how far above the floor',
      met: true,
    });
    const [catSecs] = await timed(() => unsquashfsFiles(sif, Number(offset), {}));
    figures.push({
      figure: `compat's read of that SIF in process, squashfs reader (s; baseline unsquashfs -lln and -cat)`,
      sifkit: readSecs,
      baseline: catSecs,
      unit: 's',
      target: 'ratio < 1',
      met: readSecs < catSecs,
    });

    // The tree: 200 promoted images, one content.
    const tree = path.join(work, 'tree');
    const eb = path.join(tree, 'easybuild-sif-images');
    await fs.mkdir(eb, { recursive: true });
    const example = process.env.SIFKIT_BENCH_COMPAT_TREE_SIF ?? sif;
    for (let i = 0; i < 200; i++)
      await fs.link(
        example,
        path.join(eb, `lumi-bench-compat-${i}-dockerhash-${i.toString(16).padStart(12, '0')}.sif`),
      );
    const [alone] = await timed(async () => cli(['compat', example, '--host', snap, '--json']));
    const [treeSecs, treeOut] = await timed(async () => cli(['compat', '--root', tree, '--host', snap, '--json']));
    const doc = JSON.parse(treeOut);
    figures.push({
      figure: `compat --root over ${doc.images.length} promoted images, one content (s; baseline: that one image alone)`,
      sifkit: treeSecs,
      baseline: alone,
      unit: 's',
      target: '<= 60 s',
      met: treeSecs <= 60,
    });
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return figures;
}
