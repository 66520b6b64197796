/**
 * The flags sifkit's node runs with: the sifkit launcher (bin/sifkit, which
 * a test holds to this list), a compute node's sifkit under --on slurm,
 * and the benchmarks, so each measures what a user runs.
 *
 * --initial-old-space-size: an image streams through node as a gigabyte of
 * short-lived buffers. With V8's small initial old space, that outside
 * memory starts a full mark-compact about every 17 MB: a hundred of them per
 * GiB read, a third of node's CPU during a release's read of the image, on
 * cores mksquashfs needs. 64 MB leaves a handful, for about 10 MiB more
 * peak resident memory (the garbage waits longer), flat whatever the size.
 * Measured in bench/one-read.bench.ts.
 */
export const NODE_FLAGS = ['--initial-old-space-size=64'] as const;
