/**
 * Waits until `ready()` holds, asking every `everyMs`. There is no cap: the
 * test's own timeout bounds the wait, where a guessed cap would fail on a
 * loaded 2-core machine. The interval only sets how often it asks.
 */
export async function until(ready: () => boolean | Promise<boolean>, everyMs = 100): Promise<void> {
  while (!(await ready())) await new Promise((r) => setTimeout(r, everyMs));
}
