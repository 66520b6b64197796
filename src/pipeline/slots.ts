/**
 * Bounded concurrency per kind of work: builds and conversions take their
 * own slots (--build-jobs per engine, --convert-jobs), whatever number of
 * variants run at once (--jobs). One set per run, in the run's state.
 */
import type { SlotKind, Slots } from './context';

class Semaphore {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * Slots with these limits (1 for a kind not given, and never less than 1).
 * Builds are bounded per engine: each engine builds on its own CPUs and
 * holds its own layer cache, and the build plan gives each its own line
 * of variants, so --build-jobs 1 over four engines runs four builds at
 * once, one on each. Conversions run on this host: one bound for all.
 */
export function newSlots(limits: Partial<Record<SlotKind, number>> = {}): Slots {
  const builds = new Map<string, Semaphore>();
  const converts = new Semaphore(Math.max(1, limits.convert ?? 1));
  const semaphore = (kind: SlotKind, on: string): Semaphore => {
    if (kind === 'convert') return converts;
    let sem = builds.get(on);
    if (!sem) {
      sem = new Semaphore(Math.max(1, limits.build ?? 1));
      builds.set(on, sem);
    }
    return sem;
  };
  return {
    async use(kind, fn, on = '') {
      const sem = semaphore(kind, on);
      await sem.acquire();
      try {
        return await fn();
      } finally {
        sem.release();
      }
    },
  };
}
