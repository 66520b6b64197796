/**
 * Declared sources, the pure part: which file a variant downloads (its URL
 * and digest for these parameter values), where the build-time file server
 * serves it, the shell step a fragment's `{{ source "NAME" "PATH" }}`
 * renders to, and the compact label that lists them.
 *
 * A source is served under a name made of its pin (`sources/sha256/<hex>`,
 * `sources/git/<commit>`), so the rendered definition, and with it the
 * definition hash, changes exactly when a pinned file does, and not when
 * only its URL moves.
 */
import { InputError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { substitute } from './template';
import type { ParamValues, Recipe, SourceSpec } from './types';

export const UNVERIFIED = 'unverified';

export interface ResolvedSource {
  name: string;
  kind: SourceSpec['kind'];
  /** The URL (file, git) or, for a local source, its path relative to the recipe directory. */
  url: string;
  /** Absolute path of a local source. */
  file?: string;
  /** The recorded sha256 (of the file; of sifkit's tarball of the tree for git), or undefined when unverified. */
  sha256?: string;
  commit?: string;
  submodules: boolean;
  /** Path under the file server's root, without a leading slash. */
  servedPath: string;
}

/** Resolves one declared source for a variant's values; a missing table row names the source and the value. */
export function resolveSource(recipe: Recipe, name: string, values: ParamValues, where: string): ResolvedSource {
  const spec = recipe.sources[name];
  if (!spec) {
    const known = Object.keys(recipe.sources);
    throw new InputError(
      'bad-fragment',
      `${where}: {{ source ${escapeForMessage(name)} }} names no declared source (declared: ${known.join(', ') || 'none'})`,
    );
  }
  let digest: string | undefined;
  if (typeof spec.sha256 === 'string') digest = spec.sha256;
  else {
    const key = values[spec.by ?? ''];
    digest = spec.sha256[key];
    if (digest === undefined) {
      throw new InputError(
        'unknown-source-version',
        `${recipe.name}: source ${name} has no sha256 for ${spec.by}=${key} (recorded: ${Object.keys(spec.sha256).join(', ')})`,
        {
          hint: `add the published sha256 of that release under sources.${name}.sha256, or "unverified" until one is found`,
        },
      );
    }
  }
  const sha256 = digest === UNVERIFIED ? undefined : digest;
  const url = spec.kind === 'local' ? spec.location : substitute(spec.location, values, `sources.${name}`);
  const servedPath =
    spec.kind === 'git'
      ? `sources/git/${spec.commit}${spec.submodules ? '-recursive' : ''}.tar`
      : sha256
        ? `sources/sha256/${sha256}`
        : `sources/unverified/${name}`;
  return {
    name,
    kind: spec.kind,
    url,
    file: spec.file,
    sha256,
    commit: spec.commit,
    submodules: spec.submodules,
    servedPath,
  };
}

/** A path a fetched source is written to in the build: plain characters only, so it needs no quoting. */
const DEST = /^[A-Za-z0-9._/-]+$/;

/**
 * The shell step that fetches a source from the build-time file server
 * into `dest` and, when its digest is recorded, checks it again inside
 * the build (the server checks it before serving; this catches anything
 * between them).
 */
export function renderSourceFetch(src: ResolvedSource, dest: string, where: string): string {
  if (!DEST.test(dest) || dest.split('/').includes('..')) {
    throw new InputError(
      'bad-fragment',
      `${where}: {{ source "${src.name}" ... }} path ${escapeForMessage(dest)} must be letters, digits, . _ - / (no ..)`,
    );
  }
  const get = `curl -fsS -o '${dest}' "http://127.0.0.1:\${SERVER_PORT}/${src.servedPath}"`;
  return src.sha256 ? `${get} ; echo '${src.sha256}  ${dest}' | sha256sum -c --quiet -` : get;
}

/** One word per source, space-separated: `name@sha256:<hex>`, `name@git:<commit>[+sha256:<hex>]`, `name@unverified`. */
export function sourcesLabel(list: readonly ResolvedSource[]): string {
  return [...list]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(
      (s) =>
        `${s.name}@${s.kind === 'git' ? `git:${s.commit}${s.sha256 ? `+sha256:${s.sha256}` : ''}` : s.sha256 ? `sha256:${s.sha256}` : UNVERIFIED}`,
    )
    .join(' ');
}

/** What makes two sources the same file in the cache (two recipes or versions share it). */
export function sourceKey(s: ResolvedSource): string {
  return s.servedPath;
}

/** A source as provenance records it (h26's provenance document, SBOMs). */
export interface SourceProvenance {
  name: string;
  kind: ResolvedSource['kind'];
  url: string;
  sha256?: string;
  commit?: string;
  submodules?: boolean;
}

/** The sources a rendered variant was built from, with their pins, sorted by name. */
export function sourcesOf(rendered: { sources?: readonly ResolvedSource[] }): SourceProvenance[] {
  return [...(rendered.sources ?? [])]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((s) => ({
      name: s.name,
      kind: s.kind,
      url: s.url,
      ...(s.sha256 ? { sha256: s.sha256 } : {}),
      ...(s.kind === 'git' ? { commit: s.commit, submodules: s.submodules } : {}),
    }));
}
