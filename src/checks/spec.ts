/** Which of a recipe's checks (read when it loaded, recipe/checks.ts) a run takes. Pure. */
import { InputError } from '../errors';
import type { Check } from '../recipe/checks';

/** The checks `--check` names (all when none), in the recipe's order; a name the recipe lacks is refused. */
export function selectChecks(checks: Check[], only: readonly string[] | undefined, recipe: string): Check[] {
  if (!only?.length) return checks;
  const unknown = only.filter((n) => !checks.some((c) => c.name === n));
  if (unknown.length)
    throw new InputError(
      'unknown-check',
      `recipe ${recipe} has no check ${unknown.join(', ')} (it has ${checks.map((c) => c.name).join(', ')})`,
    );
  return checks.filter((c) => only.includes(c.name));
}
