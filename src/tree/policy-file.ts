/**
 * Reads a retention policy file (default: the shipped pipelines/retention.yaml)
 * for `sifkit retire` and the pipeline's retire stage alike, so both say the
 * same thing about a policy that cannot be read: bad input, exit 2.
 */
import * as path from 'node:path';
import { InputError, errnoCode, isSifkitError } from '../errors';
import { readRegularFile } from '../util/files';
import { shippedDir } from '../util/package';
import { parsePolicy, type Policy } from './policy';

export function defaultPolicyFile(): string {
  return path.join(shippedDir('pipelines', 'SIFKIT_PIPELINES'), 'retention.yaml');
}

export async function loadPolicyFile(file?: string): Promise<Policy> {
  const p = file ? path.resolve(file) : defaultPolicyFile();
  let text: string;
  try {
    text = await readRegularFile(p, 'retention policy');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError('no-policy', `cannot read the retention policy ${p} (${errnoCode(e) ?? 'unreadable'})`, {
      cause: e,
    });
  }
  return parsePolicy(text, p);
}
