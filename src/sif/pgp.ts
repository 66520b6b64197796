/**
 * PGP clear-signed signatures of the SIF metadata, as sylabs/sif
 * `clearsign.go` writes and reads them, through openpgp.js (6.x, its
 * CommonJS build). Every security-relevant openpgp setting is given here,
 * never left to the library's default.
 */
import type * as openpgp from 'openpgp';

/** openpgp.js takes a tenth of a second to load: only a command that signs or verifies loads it. */
function pgp(): typeof openpgp {
  return require('openpgp') as typeof openpgp;
}

const CLEARSIGN_HEAD = '-----BEGIN PGP SIGNED MESSAGE-----';

/** The hashes sylabs accepts on a clear-signed signature (RFC 4880's, minus those NIST no longer recommends). */
function acceptedHash(algorithm: number): 'sha224' | 'sha256' | 'sha384' | 'sha512' | undefined {
  const { hash } = pgp().enums;
  const accepted: Record<number, 'sha224' | 'sha256' | 'sha384' | 'sha512'> = {
    [hash.sha224]: 'sha224',
    [hash.sha256]: 'sha256',
    [hash.sha384]: 'sha384',
    [hash.sha512]: 'sha512',
  };
  return accepted[algorithm];
}

/** Every call into openpgp is given this, so no security-relevant setting is the library's default. */
function baseConfig() {
  const { enums } = pgp();
  return {
    preferredHashAlgorithm: enums.hash.sha256,
    minRSABits: 2047,
    rejectHashAlgorithms: new Set([enums.hash.md5, enums.hash.ripemd, enums.hash.sha1]),
    rejectMessageHashAlgorithms: new Set([enums.hash.md5, enums.hash.ripemd, enums.hash.sha1]),
    rejectPublicKeyAlgorithms: new Set([enums.publicKey.elgamal, enums.publicKey.dsa]),
    // No random salt notation: a signature of the same payload with the same key at the same time is the same bytes (sylabs: OptSignWithoutPGPSignatureSalt).
    nonDeterministicSignaturesViaNotation: false,
    // Go's openpgp (sylabs' reader) judges a key by its self-signatures as they are now, not at the data signature's time:
    // so must we, or a key whose self-signature was renewed after signing (sylabs' own test key) is refused.
    allowInsecureVerificationWithReformattedKeys: true,
    // The rest of what decides which keys and packets are taken, stated here rather than left to
    // openpgp's module-wide defaults (which any code in the process may change):
    allowMissingKeyFlags: false, // a key or subkey without key flags does not sign
    ignoreMalformedPackets: false,
    ignoreUnsupportedPackets: true, // unknown packets in a keyring are skipped, as Go's reader does
    enforceGrammar: true,
    additionalAllowedPackets: [],
    knownNotations: [], // a signature with a critical notation is refused
    rejectCurves: new Set([enums.curve.secp256k1]),
    enableParsingV5Entities: false,
    maxUserIDLength: 5120,
    showVersion: false,
    showComment: false,
  };
}

/** baseConfig over openpgp's whole config, for the methods that take a complete one (the settings that matter are baseConfig's). */
function fullConfig(): openpgp.Config {
  return { ...pgp().config, ...baseConfig() };
}

export function isClearSigned(data: Buffer): boolean {
  return data.subarray(0, CLEARSIGN_HEAD.length).toString('latin1') === CLEARSIGN_HEAD;
}

// Opaque outside this module: sifkit's published declarations must not reach
// openpgp's, whose types need packages a consumer does not install.
declare const pgpPrivate: unique symbol;
declare const pgpPublic: unique symbol;
/** An OpenPGP secret key read by readPgpPrivateKey. */
export interface PgpPrivateKey {
  readonly [pgpPrivate]: true;
}
/** An OpenPGP public key read by readPgpKeyring. */
export interface PgpPublicKey {
  readonly [pgpPublic]: true;
}
const priv = (k: PgpPrivateKey): openpgp.PrivateKey => k as unknown as openpgp.PrivateKey;
const pub = (k: PgpPublicKey): openpgp.PublicKey => k as unknown as openpgp.PublicKey;

/** Reads an armored secret key; refuses an encrypted one (sifkit asks for no passphrase). */
export async function readPgpPrivateKey(armored: string): Promise<PgpPrivateKey> {
  let key: openpgp.PrivateKey;
  try {
    key = await pgp().readPrivateKey({ armoredKey: armored, config: baseConfig() });
  } catch {
    throw new Error('not an armored OpenPGP private key');
  }
  if (!key.isDecrypted())
    throw new Error(
      'the OpenPGP key is protected by a passphrase, which sifkit does not ask for (export an unprotected copy into a 0600 file)',
    );
  return key as unknown as PgpPrivateKey;
}

/** Reads every public key of an armored keyring (public or secret keys: only their public halves are kept). */
export async function readPgpKeyring(armored: string): Promise<PgpPublicKey[]> {
  try {
    const keys = await pgp().readKeys({ armoredKeys: armored, config: baseConfig() });
    return keys.map((k) => (k.isPrivate() ? k.toPublic() : (k as openpgp.PublicKey)) as unknown as PgpPublicKey);
  } catch {
    throw new Error('not an armored OpenPGP keyring');
  }
}

/** The public half of a secret key. */
export function pgpPublicOf(k: PgpPrivateKey): PgpPublicKey {
  return priv(k).toPublic() as unknown as PgpPublicKey;
}

export function pgpFingerprint(opaque: PgpPublicKey | PgpPrivateKey): string {
  const key = opaque as unknown as openpgp.PublicKey | openpgp.PrivateKey;
  return key.getFingerprint().toUpperCase();
}

/** Why the key cannot make a signature dated `date` (expired, revoked, not yet valid, no signing key), or undefined. */
async function cannotSignAt(key: openpgp.PrivateKey, date: Date): Promise<string | undefined> {
  try {
    await key.getSigningKey(undefined, date, undefined, fullConfig());
    return undefined;
  } catch (e) {
    return (e as Error).message.replace(/^Error[a-z ]*: /, '');
  }
}

/**
 * The date a signature is made at. The SIF's own time when the key could
 * sign then, so a reproducible SIF stays reproducible once signed; else the
 * time the key as it is now could first sign (its newest self-signature, or
 * its signing subkey's binding): as deterministic, and never openpgp's
 * "now" by default. Throws, saying why, when the key cannot sign now.
 */
export async function pgpSigningDate(opaque: PgpPrivateKey, preferred: Date | undefined, now: Date): Promise<Date> {
  const key = priv(opaque);
  const problem = await cannotSignAt(key, now);
  if (problem) throw new Error(`the OpenPGP key cannot sign: ${problem}`);
  if (preferred && preferred <= now && !(await cannotSignAt(key, preferred))) return preferred;
  const signing = await key.getSigningKey(undefined, now, undefined, fullConfig());
  const times = [(await key.getPrimaryUser(now, undefined, fullConfig())).selfCertification.created];
  if ('bindingSignatures' in signing)
    times.push(...signing.bindingSignatures.map((b) => b.created).filter((t) => t !== null && t <= now));
  const first = new Date(Math.max(...times.map((t) => (t ?? now).getTime())));
  return (await cannotSignAt(key, first)) ? now : first;
}

/** Clear-signs `payload` at `date`; gives the bytes, the hash used and the primary key's fingerprint. */
export async function clearSign(
  payload: Buffer,
  opaque: PgpPrivateKey,
  date: Date,
): Promise<{ data: Buffer; hash: 'sha256' | 'sha384' | 'sha512'; fingerprint: Buffer }> {
  const key = priv(opaque);
  const message = await pgp().createCleartextMessage({ text: payload.toString('utf8') });
  const armored = await pgp().sign({ message, signingKeys: key, date, config: baseConfig(), format: 'armored' });
  // The armor's "Hash:" header names the hash the signature packet used.
  const named = /^Hash: (SHA256|SHA384|SHA512)$/m.exec(armored.slice(0, 200))?.[1];
  const hash = named ? (named.toLowerCase() as 'sha256' | 'sha384' | 'sha512') : undefined;
  if (hash !== 'sha256' && hash !== 'sha384' && hash !== 'sha512')
    throw new Error('the OpenPGP key signed with a hash SIF cannot record');
  return { data: Buffer.from(armored, 'utf8'), hash, fingerprint: Buffer.from(key.getFingerprint(), 'hex') };
}

/**
 * Verifies a clear-signed message against the keyring: the payload and the
 * fingerprint of the primary key that signed it, or an Error saying why not.
 */
export async function verifyClearSigned(
  data: Buffer,
  opaque: PgpPublicKey[],
  now = new Date(),
): Promise<{ payload: Buffer; fingerprint: string }> {
  const keys = opaque.map(pub);
  let message: openpgp.CleartextMessage;
  try {
    message = await pgp().readCleartextMessage({ cleartextMessage: data.toString('utf8'), config: baseConfig() });
  } catch {
    throw new Error('not a clear-signed message');
  }
  const result = await pgp().verify({
    message,
    verificationKeys: keys,
    expectSigned: false,
    date: now,
    config: baseConfig(),
  });
  // Why a signature by a key of the keyring failed (revoked, expired when it signed, bad data): named, not "not in the keyring".
  const reasons: string[] = [];
  for (const s of result.signatures) {
    try {
      await s.verified;
    } catch (e) {
      if (keys.some((k) => k.getKeys(s.keyID).length > 0))
        reasons.push(`key ID ${s.keyID.toHex().toUpperCase()} of the keyring: ${(e as Error).message}`);
      continue;
    }
    const packet = (await s.signature).packets[0];
    if (!acceptedHash(packet.hashAlgorithm as number)) continue;
    const key = keys.find((k) => k.getKeys(s.keyID).length > 0);
    if (!key) continue;
    // openpgp judges the key at the signature's own date, which the signer chose: a key that has since
    // expired or been revoked could still date a new signature in its valid past. The key must be valid now too.
    try {
      await key.getSigningKey(s.keyID, now, undefined, fullConfig());
    } catch (e) {
      reasons.push(`key ID ${s.keyID.toHex().toUpperCase()} of the keyring cannot sign now: ${(e as Error).message}`);
      continue;
    }
    return { payload: Buffer.from(message.getText(), 'utf8'), fingerprint: key.getFingerprint().toUpperCase() };
  }
  if (reasons.length > 0) throw new Error(`the signature does not verify (${reasons.join('; ')})`);
  const ids = result.signatures.map((s) => s.keyID.toHex().toUpperCase()).join(', ');
  throw new Error(`no valid signature by a key of the keyring (signed by key ID ${ids || 'none'})`);
}
