/**
 * Signing and verification keys from files. A private key file that group
 * or others can read is refused, as ssh refuses one; a key's bytes never
 * reach a message, a log or another file (errors name the file, not its
 * content). X.509 certificates are checked against a CA pool before their
 * key is trusted.
 */
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { InputError, RefusedError, errnoCode } from '../errors';
import { openRegular } from '../util/files';
import { commandLine } from '../emit/bash';
import { escapeForMessage } from '../validate/names';
import { keyFingerprint, type Signer } from './dsse';
import { certificateConstraints, issuerProblem, leafProblem, type CertificateConstraints } from './x509';
import {
  pgpFingerprint,
  pgpSigningDate,
  readPgpKeyring,
  readPgpPrivateKey,
  type PgpPrivateKey,
  type PgpPublicKey,
} from './pgp';

export type SigningKey =
  | { kind: 'dsse'; signer: Signer; fingerprint: string; file: string }
  | { kind: 'pgp'; key: PgpPrivateKey; fingerprint: string; file: string };

const SUPPORTED = 'ed25519, ECDSA P-256/P-384 or RSA (2048 bits or more)';

async function readKeyFile(file: string, what: string): Promise<{ text: string; mode: number }> {
  let fh;
  try {
    fh = await openRegular(file, what);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(
      'unreadable-key',
      `cannot read ${what} ${escapeForMessage(file)}: ${errnoCode(e) ?? 'unreadable'}`,
    );
  }
  try {
    const st = await fh.stat();
    if (st.size > 1 << 20)
      throw new InputError('bad-key', `${escapeForMessage(file)} is ${st.size} bytes, too big to be a key`);
    return { text: await fh.readFile('utf8'), mode: st.mode & 0o777 };
  } finally {
    await fh.close();
  }
}

function checkKeyType(key: KeyObject, file: string): void {
  const t = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const ok =
    t === 'ed25519' ||
    (t === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1')) ||
    (t === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048);
  if (!ok)
    throw new InputError(
      'bad-key',
      `${escapeForMessage(file)}: a ${t}${curve ? ` ${curve}` : ''} key; sifkit signs with ${SUPPORTED}`,
    );
}

/**
 * A private key: PEM (PKCS#8, or the traditional RSA/EC forms) for DSSE, or
 * an armored OpenPGP secret key for a clear-signed signature.
 */
export async function loadSigningKey(file: string): Promise<SigningKey> {
  const { text, mode } = await readKeyFile(file, 'private key');
  if (mode & 0o077) {
    throw new InputError(
      'key-permissions',
      `${escapeForMessage(file)}: private key file is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); refusing it, as ssh does`,
      {
        hint: commandLine(['chmod', '600', file]),
      },
    );
  }
  if (text.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')) {
    let key: PgpPrivateKey;
    try {
      key = await readPgpPrivateKey(text);
    } catch (e) {
      throw new InputError('bad-key', `${escapeForMessage(file)}: ${(e as Error).message}`);
    }
    // A key that cannot sign (expired, revoked, no signing subkey) is refused here, before any work it would end.
    await pgpSigningDate(key, undefined, new Date()).catch((e: Error) => {
      throw new InputError('bad-key', `${escapeForMessage(file)}: ${e.message}`);
    });
    return { kind: 'pgp', key, fingerprint: pgpFingerprint(key), file };
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: text, format: 'pem' });
  } catch (e) {
    // Node's message names the problem (encrypted, unsupported), never the key's bytes.
    const encrypted = /ENCRYPTED/.test(text.slice(0, 200));
    throw new InputError(
      'bad-key',
      `${escapeForMessage(file)}: ${encrypted ? 'an encrypted private key, which sifkit does not ask a passphrase for' : 'not a PEM private key'}`,
      { cause: e },
    );
  }
  checkKeyType(privateKey, file);
  const publicKey = createPublicKey(privateKey);
  return { kind: 'dsse', signer: { privateKey, publicKey }, fingerprint: keyFingerprint(publicKey), file };
}

/** A PEM public key (or a certificate's key, unchecked: use loadCertificateKey for X.509 trust). */
export async function loadPublicKey(file: string): Promise<KeyObject> {
  const { text } = await readKeyFile(file, 'public key');
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))
    throw new InputError('bad-key', `${escapeForMessage(file)} is a private key: verify with its public key`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (e) {
    throw new InputError('bad-key', `${escapeForMessage(file)}: not a PEM public key`, { cause: e });
  }
  checkKeyType(key, file);
  return key;
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function validNow(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now <= new Date(c.validTo);
}

/**
 * The key of a certificate that chains to a CA of the pool: each issuer a
 * CA certificate of the pool whose key verifies the certificate below it,
 * all valid now, ending at a self-signed one, each link judged as RFC 5280
 * says (x509.ts: the issuer's cA, keyCertSign and pathLen; the leaf's
 * digitalSignature; code signing in every extended key usage listed; no
 * unchecked critical extension). Refused (exit 3) otherwise.
 */
export async function loadCertificateKey(
  certFile: string,
  caPoolFile: string,
  now = new Date(),
): Promise<{ key: KeyObject; subject: string; fingerprint: string }> {
  const certs = splitPem((await readKeyFile(certFile, 'certificate')).text);
  const pool = splitPem((await readKeyFile(caPoolFile, 'CA pool')).text);
  if (certs.length === 0) throw new InputError('bad-certificate', `${escapeForMessage(certFile)}: no PEM certificate`);
  if (pool.length === 0) throw new InputError('bad-certificate', `${escapeForMessage(caPoolFile)}: no PEM certificate`);
  let leaf: X509Certificate;
  let cas: X509Certificate[];
  try {
    leaf = new X509Certificate(certs[0]);
    cas = pool.map((p) => new X509Certificate(p));
  } catch (e) {
    throw new InputError(
      'bad-certificate',
      `${escapeForMessage(certFile)} or ${escapeForMessage(caPoolFile)}: a certificate that cannot be parsed`,
      { cause: e },
    );
  }
  const refuse = (why: string): never => {
    throw new RefusedError('untrusted-certificate', `${escapeForMessage(certFile)}: ${why}`);
  };
  const constraints = (c: X509Certificate): CertificateConstraints => {
    try {
      return certificateConstraints(c.raw);
    } catch (e) {
      throw new InputError(
        'bad-certificate',
        `${escapeForMessage(c.subject, 80)}: its extensions cannot be read (${(e as Error).message})`,
      );
    }
  };
  if (!validNow(leaf, now)) refuse(`not valid now (valid ${leaf.validFrom} to ${leaf.validTo})`);
  const leafWhy = leafProblem(constraints(leaf));
  if (leafWhy) refuse(leafWhy);
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    // Every certificate of the pool whose name and key issued `current` (not checkIssued, which
    // hides why: it already fails for an issuer without keyCertSign); the first one a verifier
    // accepts continues the chain.
    const candidates = cas.filter((c) => c.subject === current.issuer && current.verify(c.publicKey));
    if (candidates.length === 0) refuse(`not issued by a CA of ${escapeForMessage(caPoolFile)}`);
    const problems = candidates.map((c) =>
      validNow(c, now)
        ? issuerProblem(constraints(c), depth)
        : `is not valid now (valid ${c.validFrom} to ${c.validTo})`,
    );
    const ok = problems.findIndex((p) => p === undefined);
    if (ok < 0) refuse(`its issuer ${escapeForMessage(candidates[0].subject, 80)} ${problems[0]}`);
    const issuer = candidates[ok];
    if (issuer.subject === issuer.issuer && issuer.verify(issuer.publicKey)) {
      checkKeyType(leaf.publicKey, certFile);
      return { key: leaf.publicKey, subject: leaf.subject, fingerprint: keyFingerprint(leaf.publicKey) };
    }
    current = issuer;
  }
  return refuse('its chain is longer than 8 certificates');
}

export async function loadKeyring(file: string): Promise<PgpPublicKey[]> {
  const { text } = await readKeyFile(file, 'keyring');
  try {
    return await readPgpKeyring(text);
  } catch (e) {
    throw new InputError('bad-key', `${escapeForMessage(file)}: ${(e as Error).message}`);
  }
}

export interface VerifierFlags {
  /** PEM public keys. */
  keys?: string[];
  /** An X.509 certificate whose key signed, trusted when it chains to a CA of `caPool`. */
  cert?: string;
  caPool?: string;
  /** An armored OpenPGP keyring. */
  keyring?: string;
}

/** The keys a verification trusts, from the files a user named; at least one is required. */
export async function loadVerifiers(
  f: VerifierFlags,
): Promise<{ keys: KeyObject[]; keyring: PgpPublicKey[]; names: string[] }> {
  if (Boolean(f.cert) !== Boolean(f.caPool))
    throw new InputError(
      'no-ca-pool',
      '--cert and --ca-pool go together: a certificate is trusted only through a CA pool',
    );
  if (!f.keys?.length && !f.cert && !f.keyring)
    throw new InputError(
      'no-key',
      'name the keys to trust: --key PUB.pem, --cert CERT.pem --ca-pool CA.pem, or --keyring KEYRING.asc',
    );
  const keys: KeyObject[] = [];
  const names: string[] = [];
  for (const k of f.keys ?? []) {
    const key = await loadPublicKey(k);
    keys.push(key);
    names.push(keyFingerprint(key));
  }
  if (f.cert && f.caPool) {
    const c = await loadCertificateKey(f.cert, f.caPool);
    keys.push(c.key);
    names.push(`${c.fingerprint} (${c.subject.replace(/\n/g, ', ')})`);
  }
  const keyring = f.keyring ? await loadKeyring(f.keyring) : [];
  names.push(...keyring.map(pgpFingerprint));
  return { keys, keyring, names };
}
