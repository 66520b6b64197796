/**
 * The tree's trust policy (`.sifkit/trust-policy.yaml`, schema in
 * validate/schemas/trust.ts): which keys may sign which step. With a
 * policy, `stage` and `promote` take only a SIF whose every object group (group 1 for sifkit's) a
 * `build` key signed and that has not changed since; `promote` adds the
 * `tested` signature (a DSSE envelope over the staged file's sha256 and
 * its test results' digest, kept in `.sifkit/signatures/`); `verify --deep`
 * checks both. Without a policy nothing is enforced, and `status` says so.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseYaml } from '../util/yaml';
import { InputError, RefusedError, errnoCode, isSifkitError } from '../errors';
import { commandLine } from '../emit/bash';
import { parseEnvelope, signEnvelope, verifyEnvelope } from '../sif/dsse';
import { loadVerifiers, type SigningKey, type VerifierFlags } from '../sif/keys';
import { verifyFailure, verifySif, type Verifiers } from '../sif/signature';
import { mkdirShared, readRegularFile, writeFileAtomic } from '../util/files';
import { escapeForMessage } from '../validate/names';
import { parseDocument } from '../validate/schema';
import { trustPolicySchema, type TrustedKeysDoc } from '../validate/schemas/trust';
import type { Tree } from './names';

export const TRUST_POLICY_FILE = 'trust-policy.yaml';
export const TESTED_PAYLOAD_TYPE = 'application/vnd.sifkit.tested+json';

export interface TrustedKeys extends Verifiers {
  /** The keys' fingerprints, for messages. */
  names: string[];
  /** Which file each key came from, by fingerprint (what a user is told to verify with). */
  files: KeyFile[];
}

/** A trusted key's fingerprint and the file a user verifies with (absolute). */
export interface KeyFile {
  fingerprint: string;
  format: 'dsse' | 'pgp';
  /** How a user passes it: `--key FILE`, `--cert FILE --ca-pool POOL`, `--keyring FILE`. */
  how: 'key' | 'cert' | 'keyring';
  file: string;
  caPool?: string;
}

export interface TrustPolicy {
  file: string;
  build: TrustedKeys;
  tested?: TrustedKeys;
}

export function trustPolicyPath(tree: Tree): string {
  return path.join(tree.state, TRUST_POLICY_FILE);
}

async function keysOf(doc: TrustedKeysDoc, dir: string): Promise<TrustedKeys> {
  const at = (p: string | undefined) => (p === undefined ? undefined : path.resolve(dir, p));
  const keys = doc.keys?.map((k) => at(k)!) ?? [];
  const v = await loadVerifiers({ keys, keyring: at(doc.keyring), cert: at(doc.cert), caPool: at(doc.ca_pool) });
  // loadVerifiers names the keys in this order: each --key, the cert's key, then the keyring's keys.
  const fp = (name: string) => name.split(' ')[0];
  const files: KeyFile[] = keys.map((file, i) => ({ fingerprint: v.names[i], format: 'dsse', how: 'key', file }));
  if (doc.cert)
    files.push({
      fingerprint: fp(v.names[keys.length]),
      format: 'dsse',
      how: 'cert',
      file: at(doc.cert)!,
      caPool: at(doc.ca_pool),
    });
  for (const name of v.names.slice(files.length))
    files.push({ fingerprint: name, format: 'pgp', how: 'keyring', file: at(doc.keyring)! });
  return { ...v, files };
}

/** The tree's policy, or undefined when it has none (nothing is enforced then). */
export async function loadTrustPolicy(tree: Tree): Promise<TrustPolicy | undefined> {
  const file = trustPolicyPath(tree);
  let text: string;
  try {
    text = await readRegularFile(file, 'trust policy');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    if (isSifkitError(e)) throw e;
    throw new InputError('bad-trust-policy', `cannot read ${file}: ${errnoCode(e) ?? 'unreadable'}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new InputError('bad-trust-policy', `${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const d = parseDocument(trustPolicySchema, doc ?? {}, file, 'bad-trust-policy');
  const dir = path.dirname(file);
  const build = await keysOf(d.build, dir);
  const tested = d.tested ? await keysOf(d.tested, dir) : undefined;
  if (tested && tested.keyring.length > 0)
    throw new InputError(
      'bad-trust-policy',
      `${file}: tested: signatures are DSSE: name keys or a cert, not a keyring`,
    );
  return { file, build, tested };
}

/**
 * Refuses (exit 3, one line) a SIF with an object group no `build` key of the
 * policy validly signed; else the policy's keys that did.
 */
export async function requireBuildSignature(
  policy: TrustPolicy,
  file: string,
  what: string,
  signal?: AbortSignal,
): Promise<KeyFile[]> {
  return requireSignedBy(
    policy.build,
    file,
    what,
    {
      requirement: "the tree's trust policy requires a build signature",
      hint: `the trust policy is ${policy.file}; sign with the private half of a build key it names: ${commandLine(['sifkit', 'sign', file, '--key'])} KEY`,
    },
    signal,
  );
}

/**
 * The keys a user named on the command line (`--key`, `--cert` with
 * `--ca-pool`, `--keyring`), read as a policy's are; relative paths are
 * taken from `dir` (the caller's working directory).
 */
export async function trustedKeysFromFlags(f: VerifierFlags, dir: string): Promise<TrustedKeys> {
  return keysOf({ keys: f.keys, keyring: f.keyring, cert: f.cert, ca_pool: f.caPool }, dir);
}

/**
 * Refuses (exit 3, one line) a SIF with an object group none of `keys`
 * validly signed (sifkit writes one, group 1), or that changed since; else
 * the keys that did.
 */
export async function requireSignedBy(
  keys: TrustedKeys,
  file: string,
  what: string,
  why: { requirement: string; hint: string },
  signal?: AbortSignal,
): Promise<KeyFile[]> {
  // Every group, not only group 1: an object a reader may take (a second SBOM, labels, a partition) in a
  // group of its own, unsigned, would otherwise ride along with a valid group 1.
  const r = await verifySif(file, keys, { signal });
  const failure = verifyFailure(r);
  if (failure) {
    const unsigned = r.ungrouped.length === 0 && r.groups.every((g) => g.signatures.every((s) => s.id === 0));
    throw new RefusedError(
      unsigned ? 'unsigned' : 'bad-signature',
      unsigned ? `${what} is not signed; ${why.requirement}` : `${what}: ${failure.slice(r.file.length + 2)}`,
      { hint: why.hint },
    );
  }
  const valid = new Set(
    r.groups.flatMap((g) => g.signatures.flatMap((s) => (s.problems.length === 0 ? s.signers : []))),
  );
  return keys.files.filter((k) => valid.has(k.fingerprint));
}

/** What the tested signature covers: the staged file and its test results, by digest. */
export function testedPayload(name: string, sha256: string, tests: unknown[]): Buffer {
  const results = createHash('sha256').update(JSON.stringify(tests)).digest('hex');
  return Buffer.from(
    JSON.stringify({
      _type: 'https://github.com/sifkit/tested/v1',
      image: name,
      sha256,
      testResults: { sha256: results, runs: tests.length },
    }),
  );
}

export function testedSignaturePath(tree: Tree, name: string): string {
  return path.join(tree.state, 'signatures', `${name}.tested.json`);
}

/** Checks the tested signature of a staged image; a one-line problem, or undefined when it holds. */
export async function checkTested(
  tree: Tree,
  keys: KeyObject[],
  name: string,
  sha256: string,
  tests: unknown[],
): Promise<string | undefined> {
  const file = testedSignaturePath(tree, name);
  const data = await fs.readFile(file).catch(() => undefined);
  if (!data) return 'no tested signature';
  const env = parseEnvelope(data);
  if (!env) return `${path.basename(file)} is not a DSSE envelope`;
  try {
    const { payload, validKeys } = verifyEnvelope(env, TESTED_PAYLOAD_TYPE, keys);
    if (validKeys.length === 0) return 'the tested signature is not by a tested key of the trust policy';
    if (!payload.equals(testedPayload(name, sha256, tests)))
      return 'the tested signature covers another file or other test results';
  } catch (e) {
    return `the tested signature: ${(e as Error).message}`;
  }
  return undefined;
}

/** Writes the tested signature (inside the caller's mutation: it is one of the tree's files). */
export async function writeTested(
  tree: Tree,
  key: SigningKey,
  name: string,
  sha256: string,
  tests: unknown[],
): Promise<string> {
  if (key.kind !== 'dsse')
    throw new InputError('bad-key', `${escapeForMessage(key.file)}: the tested signature is DSSE: use a PEM key`);
  const file = testedSignaturePath(tree, name);
  await mkdirShared(path.dirname(file));
  await writeFileAtomic(file, signEnvelope(TESTED_PAYLOAD_TYPE, testedPayload(name, sha256, tests), [key.signer]));
  return file;
}
