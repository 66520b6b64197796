import type { Provenance } from '../provenance';
import { checkDockerfileLines, dockerfileString } from '../emit/dockerfile';
import { LABEL } from '../validate/labels';
import { definitionHash } from './hash';
import { checkFetches, definitionEnv } from './fetches';
import { assertLintClean, assertNoRawDownloads, type LintProblem } from './lint';
import { parseDockerfile, type ParsedDockerfile } from './parsed-dockerfile';
import { renderSourceFetch, resolveSource, sourcesLabel, type ResolvedSource } from './sources';
import { variantNames } from './names';
import { resolveServed, type ServedFile } from './served';
import { substitute } from './template';
import type { ContextFile, ParamValues, Recipe, VariantNames } from './types';

// The label keys live with their one reader (validate/labels.ts).
export { LABEL };

export type { Provenance };

export interface RenderInputs {
  recipe: Recipe;
  values: ParamValues;
  fragments: Array<[string, string]>;
  /** Digests of the context files (see digestContext). */
  files: Record<string, string>;
  /**
   * The listed context entries those digests were taken over (listContext),
   * carried to the build so it streams exactly what the hash covers; none
   * when the recipe has no context.
   */
  context?: ContextFile[];
  provenance: Provenance;
  /** YYYYMMDD used in the EasyConfig name. */
  date: string;
}

export interface RenderedVariant {
  recipe: string;
  values: ParamValues;
  names: VariantNames;
  /** Args passed at each build (port and prefix of the file server). */
  runtimeArgs: string[];
  definitionHash: string;
  /** The served files of this variant with their roles (what the leak scan judges by). */
  served: ServedFile[];
  labels: Record<string, string>;
  /** The complete Dockerfile: body plus the provenance LABEL. */
  dockerfile: string;
  /** That Dockerfile read once, by the render: every later reader (the build's provenance facts) takes this. */
  parsed: ParsedDockerfile;
  warnings: LintProblem[];
  /** The declared sources its fragments fetch, in order of first use (recipe/sources.ts). */
  sources: ResolvedSource[];
  /** The build context the definition hash covers, as listed once when the recipe's inputs were read. */
  context: ContextFile[];
}

/**
 * Renders one variant. The hash is taken over the body (fragments with
 * values substituted), the static args and the context digests; the
 * provenance labels, which carry the hash itself and the sifkit revision,
 * are appended after it, so a new sifkit commit does not force a rebuild.
 */
export function renderVariant(input: RenderInputs): RenderedVariant {
  const { recipe, values } = input;
  const context = input.context ?? [];
  // The hash covers the digests and the build streams the listing: they must be of one listing.
  const listed = new Set(context.map((f) => f.rel));
  const unlisted = Object.keys(input.files).find((rel) => !listed.has(rel));
  if (unlisted !== undefined)
    // A caller's bug, not bad input: reported as such.
    throw new Error(
      `context digest for ${unlisted} without its listed entry: pass the listing the digests were taken over`,
    );
  const names = variantNames(recipe.naming, values, input.date);
  const sources = new Map<string, ResolvedSource>();
  const sourceRef = (rel: string) => (name: string, dest: string) => {
    const src = sources.get(name) ?? resolveSource(recipe, name, values, rel);
    sources.set(name, src);
    return renderSourceFetch(src, dest, rel);
  };
  const body = input.fragments
    .map(([rel, text]) => `# ---- ${rel} ----\n${substitute(text, values, rel, sourceRef(rel)).trimEnd()}\n`)
    .join('\n');
  const hash = definitionHash({ body, buildArgs: {}, files: input.files });
  const labels: Record<string, string> = {
    [LABEL.title]: names.stem,
    [LABEL.imageVersion]: values[recipe.naming.version],
    [LABEL.recipe]: recipe.name,
    [LABEL.stem]: names.stem,
    [LABEL.definitionHash]: hash,
    [LABEL.version]: input.provenance.sifkitVersion,
    [LABEL.revision]: input.provenance.revision,
  };
  for (const p of recipe.parameters) labels[LABEL.paramPrefix + p.name] = values[p.name];
  if (sources.size > 0) labels[LABEL.sources] = sourcesLabel([...sources.values()]);
  const labelLines = Object.entries(labels).map(([k, v]) => `      ${k}=${dockerfileString(v, `label ${k}`)}`);
  const dockerfile = `${body}\n# ---- provenance (sifkit) ----\nLABEL \\\n${labelLines.join(' \\\n')}\n`;
  const what = `${recipe.name} ${names.stem}`;
  // A long value substituted into a fragment can make a line the builder will not read: refused here, not at build.
  checkDockerfileLines(dockerfile, what);
  const warnings = assertLintClean(dockerfile, what);
  // Read once, for every check below.
  const parsed = parseDockerfile(dockerfile);
  // Every fetch from the file server names a file with a role, and no licensed one outlives its RUN.
  const served = resolveServed(recipe, values, definitionEnv(parsed));
  // Declared sources come from the source cache through the same server: role `source`, they may stay.
  const fromCache: ServedFile[] = [...sources.values()].map((src) => ({ file: src.servedPath, role: 'source' }));
  const fetched = checkFetches(parsed, [...served, ...fromCache], what);
  for (const file of fetched.unfetched)
    warnings.push({ line: 0, severity: 'warning', message: `served file ${file} has a role but no step fetches it` });
  assertNoRawDownloads(parsed, what);
  return {
    recipe: recipe.name,
    values,
    names,
    runtimeArgs: recipe.runtimeArgs,
    definitionHash: hash,
    served,
    labels,
    dockerfile,
    parsed,
    warnings,
    sources: [...sources.values()],
    context,
  };
}
