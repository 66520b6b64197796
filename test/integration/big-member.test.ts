/**
 * A member of 8 GiB or more, as the real engine writes it: Go's tar writer
 * puts such a size only in a pax `size=` record and a zero in the header's
 * field. An image with an 8 GiB file (its first bytes data, the rest a
 * hole, so the engine stores little) goes through the engine's export into
 * a SIF (`convert docker-daemon:`, the raw tar path). A walk that read the
 * size field alone took the file's first block for a header and refused
 * the stream (sifkit before this test: "Error occurred reading tar file").
 * A file of zeros would not show it: its first block reads as the end of
 * the archive. The release's `docker save` read walks with the same code
 * (util/tar-walk.ts); it is not run here, as the engine writes the whole
 * save to its own disk first (8 GiB, a minute).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { BUSYBOX, docker, removeTestImages, runId } from '../support/engine';
import { buildFixtureImage } from '../support/trees';
import { inspectSif } from '../../src/sif/inspect';

/** The smallest size the ustar field cannot hold. */
const BIG = 2 ** 33;
const TAG = `sifkit-test/big-member:${runId}`;
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-big-member-'));
  await buildFixtureImage(
    docker,
    TAG,
    `FROM ${BUSYBOX}\nRUN printf data > /big && truncate -s ${BIG} /big && echo after > /after\nCMD ["/bin/sh"]\n`,
  );
}, 600_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
  await removeTestImages();
});

describe('a file of 8 GiB (a pax size, the field zero) through the engine', () => {
  it('converts from the engine: the SIF holds the file at its size, and the file after it', async () => {
    const out = path.join(dir, 'big.sif');
    const r = await runCli(['convert', `docker-daemon:${TAG}`, '-o', out]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const s = await inspectSif(out);
    const listing = execFileSync('unsquashfs', ['-lln', '-o', String(s.partition!.offset), out]).toString();
    expect(listing).toMatch(new RegExp(`^-rw-r--r-- 0/0\\s+${BIG} .* squashfs-root/big$`, 'm'));
    expect(listing).toMatch(/ squashfs-root\/after$/m);
    // Its first bytes are the file's own (unsquashfs stops at the pipe's close).
    const head = execFileSync('bash', [
      '-c',
      'unsquashfs -o "$1" -cat "$2" big | head -c 4',
      '-',
      String(s.partition!.offset),
      out,
    ]);
    expect(head.toString()).toBe('data');
  }, 600_000);
});
