/**
 * Time as an effect, for the places where waiting matters to a test:
 * polling the scheduler, a child's time limit. The real clock is the
 * host's; unit tests move a manual one (test/support/fake-clock.ts), so
 * no test waits for real time or guesses how long something takes.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`; rejects at once with the signal's reason on abort (the caller says what that means). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` once after `ms`; the returned function cancels it. It does not keep the process alive by itself (a heartbeat must not). */
  setTimer(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  async sleep(ms, signal) {
    if (signal?.aborted) throw signal.reason;
    await delay(ms, undefined, { signal }).catch((e) => {
      throw signal?.aborted ? signal.reason : e;
    });
  },
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};
