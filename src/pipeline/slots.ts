/**
 * Bounded concurrency per kind of work: builds and conversions take their
 * own slots (--build-jobs, --convert-jobs), whatever number of variants
 * run at once (--jobs). One set per run, in the run's state.
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

/** Slots with these limits (1 for a kind not given, and never less than 1). */
export function newSlots(limits: Partial<Record<SlotKind, number>> = {}): Slots {
  const byKind: Record<SlotKind, Semaphore> = {
    build: new Semaphore(Math.max(1, limits.build ?? 1)),
    convert: new Semaphore(Math.max(1, limits.convert ?? 1)),
  };
  return {
    async use(kind, fn) {
      const sem = byKind[kind];
      await sem.acquire();
      try {
        return await fn();
      } finally {
        sem.release();
      }
    },
  };
}
