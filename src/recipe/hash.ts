import { createHash } from 'node:crypto';

export interface HashInputs {
  /** The rendered definition without the provenance labels (they carry the hash). */
  body: string;
  /** Static build args (name -> value); per-build args are not part of it. */
  buildArgs: Record<string, string>;
  /** Context file path -> sha256 of its content. */
  files: Record<string, string>;
}

/**
 * sha256 over everything that decides what a build produces. Keys are
 * sorted and every field is length-framed, so no two different inputs can
 * run together into the same byte string.
 */
export function definitionHash(inputs: HashInputs): string {
  const h = createHash('sha256');
  const put = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    h.update(`${b.length}:`);
    h.update(b);
  };
  put('sifkit-definition-v1');
  put(inputs.body);
  for (const k of Object.keys(inputs.buildArgs).sort()) {
    put(`arg:${k}`);
    put(inputs.buildArgs[k]);
  }
  for (const k of Object.keys(inputs.files).sort()) {
    put(`file:${k}`);
    put(inputs.files[k]);
  }
  return h.digest('hex');
}
