/**
 * The Linux kernel as a reader of the squashfs images sifkit writes: what
 * apptainer mounts when it runs a SIF (squashfuse aside). Root and loop
 * devices are needed; CI runs as root on a machine that has them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Whether this machine lets the tests mount a squashfs image (loop devices, CAP_SYS_ADMIN): tried
 * once, on a tiny image. Under CI (which runs as root with loop devices) a machine that cannot is an
 * error, never a skip; elsewhere the kernel's tests are skipped and say so.
 */
export function kernelMounts(who: string): boolean {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sifkit-mount-probe-'));
  try {
    execFileSync('mksquashfs', [dir, path.join(dir, 'probe.img'), '-quiet', '-no-progress'], { stdio: 'ignore' });
    mkdirSync(path.join(dir, 'mnt'));
    execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', path.join(dir, 'probe.img'), path.join(dir, 'mnt')], {
      stdio: 'ignore',
    });
    execFileSync('umount', [path.join(dir, 'mnt')]);
    return true;
  } catch (e) {
    if (process.env.CI)
      throw new Error(`${who}: CI must mount squashfs images (root, loop devices): ${(e as Error).message}`);
    console.log(`${who}: no kernel mount here (loop devices or CAP_SYS_ADMIN missing): the kernel test is skipped`);
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` on the squashfs at `offset` of `file`, mounted read-only at `at` by the kernel. */
export function withMounted<T>(file: string, offset: number, at: string, fn: () => T): T {
  mkdirSync(at, { recursive: true });
  execFileSync('mount', ['-t', 'squashfs', '-o', `loop,ro,offset=${offset}`, file, at]);
  try {
    return fn();
  } finally {
    execFileSync('umount', [at]);
  }
}
