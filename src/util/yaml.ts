/**
 * YAML text to plain data, loading the yaml package on first use: it takes
 * a tenth of a second, which a command that reads no YAML file (--version,
 * status, inspect) need not pay.
 */
import type * as Yaml from 'yaml';

export type YamlOptions = Yaml.ParseOptions & Yaml.DocumentOptions & Yaml.SchemaOptions & Yaml.ToJSOptions;

/** yaml's `parse`, as it is: the caller gives every option it relies on. */
export function parseYaml(text: string, options?: YamlOptions): unknown {
  return (require('yaml') as typeof Yaml).parse(text, options);
}
