/**
 * Bounded concurrency per kind of work: builds and conversions take their
 * own slots (--build-jobs, --convert-jobs), whatever number of variants
 * run at once (--jobs).
 */
import type { PipelineContext } from './context';

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

const slots = new WeakMap<PipelineContext, Map<string, Semaphore>>();

export async function slot<T>(ctx: PipelineContext, kind: string, fn: () => Promise<T>): Promise<T> {
  let byKind = slots.get(ctx);
  if (!byKind) slots.set(ctx, (byKind = new Map()));
  let sem = byKind.get(kind);
  if (!sem) {
    const limit = Number((ctx.options.slots as Record<string, number> | undefined)?.[kind] ?? 1);
    byKind.set(kind, (sem = new Semaphore(Math.max(1, limit))));
  }
  await sem.acquire();
  try {
    return await fn();
  } finally {
    sem.release();
  }
}
