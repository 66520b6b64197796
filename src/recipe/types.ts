/** A recipe as loaded from docker-defs/<name>/recipe.yaml, validated. */
import type { ServedDoc } from '../validate/schemas/recipe';
import type { Check } from './checks';
import type { TestProfile } from './testing';

export type ParamType = 'version' | 'enum' | 'list' | 'path' | 'string' | 'integer';

export interface ParamSpec {
  name: string;
  type: ParamType;
  description: string;
  /** Always a string; lists are comma-separated. */
  default: string;
  /** For version/string: a regular expression the whole value must match. */
  pattern?: string;
  /** For enum and list: the allowed values (of each item, for list). */
  values?: string[];
}

export interface Naming {
  /** Prefix of tags and stems (LUMI: "lumi"). */
  prefix: string;
  /** The application name in tags, stems and EasyConfigs. */
  app: string;
  /** Name of the parameter that holds the application's version. */
  version: string;
  /** Ordered [label, parameter] pairs that make the variant's name. */
  parts: Array<[label: string, param: string]>;
}

/**
 * A served file as the recipe declares it; `file`, `path` and `when` not
 * yet resolved for a variant. The schema's union is the one list of roles
 * (validate/schemas/recipe.ts says what each means): a new role is a line
 * there, and tsc then asks fileserver/roles.ts how the scan judges it.
 */
export type ServedDecl = ServedDoc;
/** A served file's role; `source` is a declared download from the source cache (recipe/sources.ts), which may stay in a layer. */
export type ServedRole = ServedDecl['role'] | 'source';

export interface Recipe {
  name: string;
  description: string;
  /** Directory the recipe was loaded from. */
  dir: string;
  naming: Naming;
  /** Fragment paths, relative to the docker-defs root, in order. */
  fragments: string[];
  /** Build context directory (absolute) or undefined for an empty context. */
  context?: string;
  /** Default directory served to the build (absolute), when the recipe ships one. */
  serverFiles?: string;
  /** Roles of the served files (undeclared ones count as licensed). */
  served: ServedDecl[];
  parameters: ParamSpec[];
  /** Files the definition downloads, by name (recipe/sources.ts); empty when it declares none. */
  sources: Record<string, SourceSpec>;
  /** Build args supplied per build (file server port and prefix); never hashed. */
  runtimeArgs: string[];
  /** Default build matrix: partial parameter sets over the defaults. */
  matrix: Array<Record<string, string>>;
  /** Checks run by `sifkit test`, read when the recipe loads. */
  checks: Check[];
  /** How checks are launched per runner (the `testing:` section over LUMI's defaults), read when the recipe loads. */
  testing: TestProfile;
}

export type ParamValues = Record<string, string>;

/** A fully resolved variant of a recipe, before rendering. */
export interface Variant {
  recipe: Recipe;
  values: ParamValues;
}

export interface VariantNames {
  tag: string;
  stem: string;
  easyconfig: string;
  module: string;
}

/** A declared download, as the recipe gives it (see recipe/sources.ts). */
export interface SourceSpec {
  name: string;
  /** `file`: fetched over http(s); `git`: a repository at a commit; `local`: shipped beside the recipe. */
  kind: 'file' | 'git' | 'local';
  /** URL template (file, git) or path relative to the recipe directory (local). */
  location: string;
  /** Absolute path of a local source (set by the loader). */
  file?: string;
  commit?: string;
  submodules: boolean;
  /** The parameter a sha256 table is keyed by. */
  by?: string;
  /** One digest or a table by the `by` parameter's value; "unverified" where none is recorded yet. */
  sha256: string | Record<string, string>;
  note?: string;
}

/** One entry of a build context as listed (recipe/load.ts's listContext). */
export interface ContextFile {
  /** Path relative to the context root, `/`-separated. */
  rel: string;
  abs: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  size: number;
  mtime: Date;
  linkTarget?: string;
}
