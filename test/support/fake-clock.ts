/**
 * Manual time for unit tests: `now()` moves only when the test says so,
 * a sleep or timer fires when the test advances past it. A test waits for
 * the code to start waiting (`sleeping()`), then moves time; nothing in a
 * unit test waits for real time.
 */
import type { Clock } from '../../src/util/clock';

interface Timer {
  at: number;
  seq: number;
  fire: () => void;
  /** A sleep (a poll's pause), not a time limit. */
  sleep: boolean;
}

export class FakeClock implements Clock {
  private t: number;
  private timers: Timer[] = [];
  private seq = 0;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        cancel();
        reject(signal!.reason as Error);
      };
      const cancel = this.add(
        ms,
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        true,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  setTimer(ms: number, fn: () => void): () => void {
    return this.add(ms, fn, false);
  }

  private add(ms: number, fn: () => void, sleep: boolean): () => void {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fire: fn, sleep };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  /** How many sleeps and timers wait. */
  pending(): number {
    return this.timers.length;
  }

  /** How many sleeps wait (the code is pausing, not running something under a time limit). */
  sleeping(): number {
    return this.timers.filter((x) => x.sleep).length;
  }

  /** Moves time on by `ms`, firing what falls due in order. */
  advance(ms: number): void {
    const to = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= to).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fire();
    }
    this.t = to;
  }

  /** Moves time to the next timer and fires it (and those due with it). */
  next(): void {
    const first = Math.min(...this.timers.map((x) => x.at));
    if (!Number.isFinite(first)) throw new Error('fake clock: nothing waits');
    this.advance(first - this.t);
  }
}
