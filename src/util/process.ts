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

/** This host's name as it goes into file names: letters, digits, dots and underscores. */
export function hostTag(): string {
  return os.hostname().replace(/[^A-Za-z0-9._]/g, '_');
}
