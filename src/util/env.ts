/**
 * Numbers read from the environment. `Number('2m')` is NaN, and a NaN
 * deadline is never reached: `SIFKIT_LOCK_WAIT_MS=2m` waited forever. A
 * variable that is set must be a whole number of milliseconds; unset or
 * empty means the default.
 */
import { InputError } from '../errors';

export function msFromEnv(name: string, dflt: number, opts: { min?: number } = {}, env = process.env): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return dflt;
  const min = opts.min ?? 0;
  const n = /^\s*\d{1,15}\s*$/.test(text) ? Number(text) : NaN;
  if (!(n >= min))
    throw new InputError(
      'bad-environment',
      `${name}=${JSON.stringify(text)} is not a whole number of milliseconds${min ? ` of at least ${min}` : ''}`,
      { hint: `unset ${name} for the default (${dflt} ms)` },
    );
  return n;
}
