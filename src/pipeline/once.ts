import type { Once } from './context';

/**
 * A value made by the first caller and shared by the rest, failure
 * included: every variant waiting on a tree that would not open, or a
 * retire that was refused, gets the same error.
 */
export function once<T>(): Once<T> {
  let made: Promise<T> | undefined;
  return {
    get(make) {
      made ??= make();
      return made;
    },
  };
}
