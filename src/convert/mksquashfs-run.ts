/**
 * The run of `mksquashfs -tar` every converter feeds: reading a tar on its
 * stdin, writing its squashfs at `offset` of `out` (a SIF's partition, or
 * a layer's image), with the options that make two runs the same, and its
 * peak memory sampled while it runs.
 */
import { peakRssMiB, startChild } from '../util/process';
import type { Processes } from '../util/processes';
import type { Compression } from './squash-options';

/**
 * The root is always 0755 root:root, as the engine shows `/` in a
 * container: a `./` member from a rootfs tarball often carries the 0700 of
 * the temp directory it was made in, which would lock users out.
 *
 * Times: mksquashfs 4.5.1 in -tar mode ignores -root-time and stamps the
 * root with the clock, so two conversions would differ there. Its
 * SOURCE_DATE_EPOCH (which may not be combined with -mkfs-time or
 * -root-time) sets the superblock and root times and clamps any later
 * entry time to it; with the image's creation time no entry of a normal
 * build is later, so the image's times stay as they are.
 */
export function runMksquashfs(
  bin: string,
  out: string,
  offset: bigint,
  mtime: Date,
  squash: { compression: Compression; mem: string; processors?: number },
  signal?: AbortSignal,
  processes?: Processes,
  extra: string[] = [],
): { stdin: NodeJS.WritableStream; done: Promise<void>; peakMiB: () => number } {
  const secs = String(Math.max(0, Math.floor(mtime.getTime() / 1000)));
  const args = [
    '-',
    out,
    '-tar',
    '-noappend',
    '-no-strip',
    '-comp',
    squash.compression,
    '-mem',
    squash.mem,
    '-quiet',
    '-no-progress',
    '-offset',
    offset.toString(),
    '-root-mode',
    '755',
    '-root-uid',
    '0',
    '-root-gid',
    '0',
    ...(squash.processors ? ['-processors', String(squash.processors)] : []),
    ...extra,
  ];
  // mksquashfs -tar ignores -root-time: SOURCE_DATE_EPOCH fixes every time it would take from the clock.
  const { child, stdin, done } = startChild(bin, args, {
    stdin: 'pipe',
    signal,
    processes,
    env: { ...process.env, SOURCE_DATE_EPOCH: secs },
    label: 'mksquashfs',
    missing: {
      code: 'no-mksquashfs',
      message: `${bin} is not installed`,
      hint: 'install squashfs-tools (apt-get install squashfs-tools)',
    },
  });
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, peakRssMiB(child.pid) ?? 0);
  };
  // Often at first, so a short run is sampled too; then every half second.
  let timer: NodeJS.Timeout | undefined;
  const tick = (ms: number) => {
    timer = setTimeout(() => {
      sample();
      tick(Math.min(ms * 2, 500));
    }, ms);
  };
  child.on('spawn', () => {
    sample();
    tick(10);
  });
  stdin!.on('finish', sample);
  child.on('exit', () => clearTimeout(timer));
  return { stdin: stdin!, done, peakMiB: () => peak };
}
