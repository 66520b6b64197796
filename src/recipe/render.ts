import type { Provenance } from '../provenance';
import { dockerfileString } from '../emit/dockerfile';
import { LABEL } from '../validate/labels';
import { definitionHash } from './hash';
import { assertLintClean, type LintProblem } from './lint';
import { variantNames } from './names';
import { substitute } from './template';
import type { ParamValues, Recipe, VariantNames } from './types';

// The label keys live with their one reader (validate/labels.ts).
export { LABEL };

export type { Provenance };

export interface RenderInputs {
  recipe: Recipe;
  values: ParamValues;
  fragments: Array<[string, string]>;
  /** Digests of the context files (see digestContext). */
  files: Record<string, string>;
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
  labels: Record<string, string>;
  /** The complete Dockerfile: body plus the provenance LABEL. */
  dockerfile: string;
  warnings: LintProblem[];
}

/**
 * Renders one variant. The hash is taken over the body (fragments with
 * values substituted), the static args and the context digests; the
 * provenance labels, which carry the hash itself and the sifkit revision,
 * are appended after it, so a new sifkit commit does not force a rebuild.
 */
export function renderVariant(input: RenderInputs): RenderedVariant {
  const { recipe, values } = input;
  const names = variantNames(recipe.naming, values, input.date);
  const body =
    input.fragments
      .map(([rel, text]) => `# ---- ${rel} ----\n${substitute(text, values, rel).trimEnd()}\n`)
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
  const labelLines = Object.entries(labels).map(([k, v]) => `      ${k}=${dockerfileString(v, `label ${k}`)}`);
  const dockerfile = `${body}\n# ---- provenance (sifkit) ----\nLABEL \\\n${labelLines.join(' \\\n')}\n`;
  const warnings = assertLintClean(dockerfile, `${recipe.name} ${names.stem}`);
  return {
    recipe: recipe.name,
    values,
    names,
    runtimeArgs: recipe.runtimeArgs,
    definitionHash: hash,
    labels,
    dockerfile,
    warnings,
  };
}
