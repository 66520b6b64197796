/**
 * What an EasyConfig or a module needs to know about an image, read from
 * the SIF's own labels and environment (never retyped): names, versions,
 * dockerhash, the recipe it came from.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { commandLine } from '../emit/bash';
import { loadRecipeByName } from '../recipe/load';
import { sifFileName, variantNames, ymd } from '../recipe/names';
import { checkParamLabels } from '../recipe/params';
import type { Recipe, VariantNames } from '../recipe/types';
import { inspectSif } from '../sif/inspect';
import type { OciConfig } from '../validate/schemas/docker';
import type { TestRun } from '../validate/schemas/results';
import { readLedger } from '../tree/ledger';
import { loadTrustPolicy, requireBuildSignature, requireSignedBy, type KeyFile, type TrustedKeys } from '../tree/trust';
import { EASYBUILD, TESTED, type Tree } from '../tree/root';
import { LABEL, imageLabels } from '../validate/labels';
import { escapeForMessage, imageArgName } from '../validate/names';
import { joinInside } from '../validate/paths';

export interface ImageFacts {
  sifName: string;
  sifPath: string;
  stem: string;
  dockerhash: string;
  recipe: Recipe;
  values: Record<string, string>;
  appVersion: string;
  definitionHash?: string;
  sha256?: string;
  withConda?: string;
  names: VariantNames;
  date: string;
  labels: Record<string, string>;
  tests?: TestRun[];
  /** The keys of the tree's trust policy whose build signature on the SIF holds (none without a policy). */
  signedBy?: SigningKeyFact[];
}

/** A key that signed the image, as its users are told to check it. */
export interface SigningKeyFact {
  fingerprint: string;
  format: 'dsse' | 'pgp';
  how: 'key' | 'cert' | 'keyring';
  /** The key file (and CA pool) relative to the tree's root, when inside it and a plain path. */
  rel?: string;
  caPoolRel?: string;
}

/** `file` relative to `root`, when it lies inside it and is a path of plain characters (it goes into help text). */
function plainInside(root: string, file: string | undefined): string | undefined {
  if (!file) return undefined;
  const rel = path.relative(root, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) && /^[A-Za-z0-9._/-]+$/.test(rel) ? rel : undefined;
}

/**
 * The build signature's keys, by the tree's trust policy and by the keys the
 * user gave (`--key`, for a SIF outside a tree too): a SIF either does not
 * accept is refused (exit 3) before anything is written for it.
 */
async function signingFacts(
  tree: Tree | undefined,
  given: TrustedKeys | undefined,
  sifPath: string,
  what: string,
): Promise<SigningKeyFact[]> {
  const policy = tree ? await loadTrustPolicy(tree) : undefined;
  const signed: KeyFile[] = [];
  if (policy) signed.push(...(await requireBuildSignature(policy, sifPath, what)));
  if (given)
    signed.push(
      ...(await requireSignedBy(given, sifPath, what, {
        requirement: 'a signature by a key given (--key, --cert or --keyring) is required',
        // KEY is the user's own private key: the one word sifkit cannot fill in.
        hint: `name the public key of the build key that signed it, or sign it: ${commandLine(['sifkit', 'sign', sifPath, '--key'])} KEY`,
      })),
    );
  const byFingerprint = new Map(signed.map((k) => [k.fingerprint, k]));
  return [...byFingerprint.values()].map((k) => ({
    fingerprint: k.fingerprint,
    format: k.format,
    how: k.how,
    rel: tree ? plainInside(tree.root, k.file) : undefined,
    caPoolRel: tree ? plainInside(tree.root, k.caPool) : undefined,
  }));
}

/**
 * WITH_CONDA as the image's config gives it, shown to users on their page:
 * a command of plain words (`source /opt/miniconda3/bin/activate mpi4py`),
 * nothing a shell or a Markdown reader would take for more.
 */
const WITH_CONDA = /^[A-Za-z0-9_./+=:,@-]+( [A-Za-z0-9_./+=:,@-]+){0,7}$/;

function withConda(value: string | undefined, source: string): string | undefined {
  if (value !== undefined && !WITH_CONDA.test(value))
    throw new InputError(
      'bad-config',
      `${source}: WITH_CONDA ${escapeForMessage(value)} is not a command of plain words (letters, digits, _ . / + = : , @ -, single spaces)`,
    );
  return value;
}

function envValue(summary: { ociConfig?: OciConfig }, name: string): string | undefined {
  const env = summary.ociConfig?.Env ?? [];
  const hit = env.find((e) => e.startsWith(`${name}=`));
  return hit?.slice(name.length + 1);
}

/** NAME (a file in the tree) or a path to a SIF. */
export async function locateSif(arg: string, tree?: Tree): Promise<string> {
  if (arg.includes('/') || !tree) {
    const p = path.resolve(arg);
    await fs.access(p).catch(() => {
      throw new InputError('no-sif', `no SIF at ${p}`);
    });
    return p;
  }
  const name = imageArgName(arg, 'image NAME', ['a path to a SIF (one with a /)']);
  for (const dir of [tree.easybuild, tree.tested]) {
    const p = joinInside(dir, name);
    if (
      await fs.access(p).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  throw new InputError('unknown-image', `no image ${name} in ${EASYBUILD}/ or ${TESTED}/ of ${tree.root}`);
}

/** `trusted`: keys the user gave, which must have signed the SIF (beside the tree's policy, if any). */
export async function imageFacts(
  sifPath: string,
  opts: { date?: string; tree?: Tree; trusted?: TrustedKeys } = {},
): Promise<ImageFacts> {
  // Signatures first: the labels read below are the signer's word only once they are checked.
  const signedBy = await signingFacts(opts.tree, opts.trusted, sifPath, path.basename(sifPath));
  const s = await inspectSif(sifPath);
  const l = imageLabels(s.labels, sifPath);
  const { stem, dockerhash } = l;
  if (!l.recipe)
    throw new InputError(
      'no-provenance',
      `${sifPath} carries no ${LABEL.recipe} label; it was not converted by sifkit from an image sifkit built`,
    );
  // By name from the recipe directory only: a label never names a file to read.
  const recipe = await loadRecipeByName(l.recipe, undefined, `label ${LABEL.recipe} of ${sifPath}`);
  // Labels are claims: each parameter label is checked against the recipe's schema, unknown ones refused.
  const values = checkParamLabels(recipe, l.params, `labels of ${sifPath}`);
  for (const [, param] of recipe.naming.parts)
    if (!values[param])
      throw new InputError(
        'no-provenance',
        `${sifPath} has no ${LABEL.paramPrefix}${param} label, which its name needs`,
      );
  const date = opts.date ?? ymd(new Date());
  if (!/^\d{8}$/.test(date)) throw new InputError('bad-date', `--date ${date} is not YYYYMMDD`);
  const names = variantNames(recipe.naming, values, date);
  if (names.stem !== stem)
    throw new InputError('name-mismatch', `the labels give the stem ${names.stem}, but the image says ${stem}`);
  const sifName = sifFileName(stem, dockerhash);
  const entry = opts.tree ? await readLedger(opts.tree, sifName) : undefined;
  return {
    sifName,
    sifPath,
    stem,
    dockerhash,
    recipe,
    values,
    appVersion: values[recipe.naming.version],
    definitionHash: l.definitionHash,
    sha256: entry?.sha256,
    withConda: withConda(envValue(s, 'WITH_CONDA'), sifPath),
    names,
    date,
    labels: l.all,
    tests: entry?.tests,
    signedBy,
  };
}
