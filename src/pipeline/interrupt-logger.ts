/**
 * listr2's logger for a run that can be interrupted. The simple renderer
 * (no terminal, or CI) writes a failed task as `✖ title [FAILED: message]`;
 * once the run's signal has fired, a task that ends is interrupted, not
 * failed, and is written as `✖ title [interrupted]`, as the terminal's
 * renderer says it.
 */
import { color, ListrLogger, ListrLogLevels, type ListrLoggerOptions } from 'listr2';

type LogOptions = Parameters<ListrLogger['log']>[2];

export class RunLogger<Levels extends string> extends ListrLogger<Levels> {
  constructor(
    private readonly signal: AbortSignal,
    options: ListrLoggerOptions<Levels>,
  ) {
    super(options);
  }

  log(level: Levels, message: string | unknown[], options?: LogOptions): void {
    if (level === ListrLogLevels.FAILED && this.signal.aborted)
      return super.log(level, message, {
        ...options,
        suffix: { field: 'interrupted', format: () => (text?: string | number) => color.yellow(String(text ?? '')) },
      });
    return super.log(level, message, options);
  }
}
