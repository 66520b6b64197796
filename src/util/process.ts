import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { errnoCode } from '../errors';

/** Whether a process of this host runs (EPERM: it does, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}

/** Whether `pid` on `host` is known dead: only a process of this host can be checked. */
export function deadOnThisHost(host: string | undefined, pid: number): boolean {
  return host === os.hostname() && !pidAlive(pid);
}

/**
 * A process's peak resident memory so far (VmHWM, a high-water mark, so
 * the last reading before exit is the peak), in MiB; undefined once it has
 * exited or where there is no /proc.
 */
export function peakRssMiB(pid: number | undefined): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** This host's name as it goes into file names: letters, digits, dots and underscores. */
export function hostTag(): string {
  return os.hostname().replace(/[^A-Za-z0-9._]/g, '_');
}
