/**
 * The one reader of sifkit's labels on an image or a SIF. Labels come from
 * whoever made the file, so every name in them passes the name rule here,
 * before anything joins it into a path or loads a recipe by it; callers get
 * a typed object and never index the raw labels for a name again. Pure.
 */
import { InputError } from '../errors';
import { checkName, escapeForMessage } from './names';
import { parseDocument } from './schema';
import { labelsSchema } from './schemas/sif';

/** Label keys sifkit sets on every image; later stages read them back. */
export const LABEL = {
  recipe: 'io.sifkit.recipe',
  definitionHash: 'io.sifkit.definition-hash',
  version: 'io.sifkit.version',
  stem: 'io.sifkit.stem',
  dockerhash: 'io.sifkit.dockerhash',
  imageId: 'io.sifkit.image-id',
  paramPrefix: 'io.sifkit.param.',
  /** The declared sources built from: `name@sha256:<hex>` words (recipe/sources.ts). */
  sources: 'io.sifkit.sources',
  title: 'org.opencontainers.image.title',
  revision: 'org.opencontainers.image.revision',
  imageVersion: 'org.opencontainers.image.version',
  created: 'org.opencontainers.image.created',
} as const;

/** A recipe parameter's name, as recipes declare them. */
const PARAM_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/** What the labels say, each part checked where present. */
export interface LabelFacts {
  stem?: string;
  dockerhash?: string;
  recipe?: string;
  imageId?: string;
  definitionHash?: string;
  created?: string;
  params: Record<string, string>;
  /** The labels themselves, checked to be strings. */
  all: Record<string, string>;
}

/** The facts of an image with a name in the tree: stem and dockerhash are there. */
export interface ImageLabels extends LabelFacts {
  stem: string;
  dockerhash: string;
}

/**
 * Reads the labels leniently: a part that is absent stays undefined, a
 * part that is present and wrong is an InputError (exit 2) naming the
 * label, `source` and the escaped value in one line.
 */
export function labelFacts(raw: unknown, source: string): LabelFacts {
  const all = parseDocument(labelsSchema, raw ?? {}, `labels of ${source}`, 'bad-label');
  const named = <K extends Parameters<typeof checkName>[0]>(kind: K, key: string): string | undefined =>
    all[key] === undefined ? undefined : checkName(kind, all[key], `label ${key} of ${source}`);
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) {
    if (!k.startsWith(LABEL.paramPrefix)) continue;
    const p = k.slice(LABEL.paramPrefix.length);
    if (!PARAM_NAME.test(p))
      throw new InputError(
        'bad-label',
        `labels of ${source}: ${escapeForMessage(k)} does not name a recipe parameter (lowercase letters, digits, _)`,
      );
    params[p] = v;
  }
  const imageId = all[LABEL.imageId];
  if (imageId !== undefined && !/^sha256:[0-9a-f]{64}$/.test(imageId))
    throw new InputError(
      'bad-label',
      `label ${LABEL.imageId} of ${source}: ${escapeForMessage(imageId)} is not sha256:<64 hex>`,
    );
  const definitionHash = all[LABEL.definitionHash];
  if (definitionHash !== undefined && !/^[0-9a-f]{64}$/.test(definitionHash))
    throw new InputError(
      'bad-label',
      `label ${LABEL.definitionHash} of ${source}: ${escapeForMessage(definitionHash)} is not a sha256 (64 lowercase hex digits)`,
    );
  const facts: LabelFacts = {
    stem: named('stem', LABEL.stem),
    dockerhash: named('dockerhash', LABEL.dockerhash),
    recipe: named('recipe', LABEL.recipe),
    imageId,
    definitionHash,
    created: all[LABEL.created],
    params,
    all,
  };
  if (imageId && facts.dockerhash && imageId.slice(7, 19) !== facts.dockerhash)
    throw new InputError(
      'bad-label',
      `labels of ${source}: ${LABEL.dockerhash} ${facts.dockerhash} is not the start of ${LABEL.imageId} ${imageId}`,
    );
  return facts;
}

/**
 * The labels of an image that is to get a name in the tree: stem and
 * dockerhash must be there. An engine image's dockerhash is its ID's, not
 * a label's: pass it as `dockerhash`.
 */
export function imageLabels(raw: unknown, source: string, opts: { dockerhash?: string } = {}): ImageLabels {
  const facts = labelFacts(raw, source);
  const dockerhash =
    opts.dockerhash === undefined
      ? facts.dockerhash
      : checkName('dockerhash', opts.dockerhash, `image ID of ${source}`);
  const missing = !facts.stem ? LABEL.stem : !dockerhash ? LABEL.dockerhash : undefined;
  if (missing)
    throw new InputError('no-provenance', `${source} carries no ${missing} label, so its name in the tree is unknown`, {
      hint: 'convert it with sifkit convert from an image sifkit built',
    });
  return { ...facts, stem: facts.stem!, dockerhash: dockerhash! };
}
