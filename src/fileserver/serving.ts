/**
 * What one build must be served, decided once from the rendered variant
 * (pure): the directory of served files (licensed files and tools, the
 * recipe's `served:`) is needed only when this variant declares some, and
 * the file server runs when there is a directory or a declared source.
 * "Takes SERVER_PORT", "has served files" and "has sources" are three
 * different facts: a recipe that only downloads pinned sources gets them
 * from the source cache and needs no directory at all.
 */
import { InputError } from '../errors';
import type { RenderedVariant } from '../recipe/render';
import type { Recipe } from '../recipe/types';
import { digestOfServed } from './served';

export interface ServingPlan {
  /** The directory of served files, when one is named (by --server-files or the recipe's server_files). */
  dir?: string;
  /** How the directory was named, for a message about it. */
  dirNamedBy?: string;
  /** Whether a file server runs: a directory to serve or a declared source to serve from the cache. */
  serve: boolean;
}

export function servingPlan(recipe: Recipe, rendered: RenderedVariant, flagDir?: string): ServingPlan {
  const dir = flagDir ?? recipe.serverFiles;
  const dirNamedBy = flagDir ? '--server-files' : dir ? `recipe ${recipe.name}'s server_files` : undefined;
  if (!dir && rendered.served.length > 0) {
    const files = rendered.served.map((s) => `${s.file} (${s.role})`);
    throw new InputError(
      'no-server-files',
      `${rendered.names.stem} declares served files ${files.join(', ')} and no directory holds them: give --server-files DIR`,
      {
        hint: "or name the directory in recipe.yaml's server_files; declared sources need none, they come from the source cache",
      },
    );
  }
  return { dir, dirNamedBy, serve: dir !== undefined || rendered.sources.length > 0 };
}

/** One line naming the directory, what named it and why it cannot be served. */
export function badServerDir(plan: ServingPlan, why: string): InputError {
  return new InputError(
    'bad-server-files',
    `${plan.dirNamedBy ?? 'server files directory'} ${plan.dir}: missing or not a directory (${why})`,
  );
}

/**
 * The digest a build under this plan is served by, given its directory's
 * (one per run: every variant of a run is served the same directory): no
 * server, none; sources only, the digest of no files, the same for every
 * such build.
 */
export function servedDigestOf(plan: ServingPlan, dirDigest: string | undefined): string | undefined {
  if (!plan.serve) return undefined;
  return plan.dir === undefined ? digestOfServed([]) : dirDigest;
}
