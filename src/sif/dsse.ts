/**
 * DSSE envelopes (github.com/secure-systems-lab/dsse, as sigstore's
 * `signature/dsse` writes them for sylabs/sif): the signature is over the
 * pre-authentication encoding, ed25519 signs it as is, ECDSA and RSA
 * (PKCS#1 v1.5) over its SHA-256. `keyid` is the OpenSSH SHA256 fingerprint
 * of the public key. Pure: keys are node KeyObjects the caller loaded.
 */
import { createHash, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';

export interface DsseSignature {
  keyid: string;
  sig: string;
}

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: DsseSignature[];
}

/** PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body (lengths in bytes, decimal). */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** An SSH mpint: big-endian, a leading zero byte when the top bit is set. */
function sshMpint(b64url: string): Buffer {
  let b = Buffer.from(b64url, 'base64url');
  while (b.length > 1 && b[0] === 0 && (b[1] & 0x80) === 0) b = b.subarray(1);
  if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return sshString(b);
}

const CURVES: Record<string, { ssh: string; name: string; hash: string }> = {
  'P-256': { ssh: 'ecdsa-sha2-nistp256', name: 'nistp256', hash: 'sha256' },
  'P-384': { ssh: 'ecdsa-sha2-nistp384', name: 'nistp384', hash: 'sha384' },
};

/** The SSH wire form of a public key (RFC 4253, 5656, 8709). */
function sshPublicKey(pub: KeyObject): Buffer {
  const jwk = pub.export({ format: 'jwk' }) as {
    kty: string;
    crv?: string;
    x?: string;
    y?: string;
    n?: string;
    e?: string;
  };
  if (pub.asymmetricKeyType === 'ed25519')
    return Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(Buffer.from(jwk.x!, 'base64url'))]);
  if (pub.asymmetricKeyType === 'rsa')
    return Buffer.concat([sshString(Buffer.from('ssh-rsa')), sshMpint(jwk.e!), sshMpint(jwk.n!)]);
  if (pub.asymmetricKeyType === 'ec' && jwk.crv && CURVES[jwk.crv]) {
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    return Buffer.concat([
      sshString(Buffer.from(CURVES[jwk.crv].ssh)),
      sshString(Buffer.from(CURVES[jwk.crv].name)),
      sshString(point),
    ]);
  }
  throw new Error(
    `unsupported key type ${pub.asymmetricKeyType}${jwk.crv ? ` ${jwk.crv}` : ''} (ed25519, ECDSA P-256/P-384 or RSA)`,
  );
}

/** OpenSSH's `SHA256:<base64, no padding>` fingerprint: DSSE's keyid. */
export function keyFingerprint(pub: KeyObject): string {
  return `SHA256:${createHash('sha256').update(sshPublicKey(pub)).digest('base64').replace(/=+$/, '')}`;
}

/** The digest a key type signs with (null: ed25519 signs the message itself). */
function digestFor(key: KeyObject): string | null {
  if (key.asymmetricKeyType === 'ed25519') return null;
  if (key.asymmetricKeyType === 'rsa') return 'sha256';
  if (key.asymmetricKeyType === 'ec') {
    const crv = (key.asymmetricKeyDetails?.namedCurve ?? '') as string;
    // sigstore signs ECDSA with the hash the caller names (sylabs: SHA-256) whatever the curve.
    if (crv === 'prime256v1' || crv === 'secp384r1') return 'sha256';
  }
  throw new Error(
    `unsupported key type ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''} (ed25519, ECDSA P-256/P-384 or RSA)`,
  );
}

export interface Signer {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/**
 * Signs `payload` with every signer into one envelope, as sylabs' multi-signer
 * does. RSA is PKCS#1 v1.5 and ed25519 deterministic, so those give the same
 * bytes every time; ECDSA does not (random nonce).
 */
export function signEnvelope(payloadType: string, payload: Buffer, signers: Signer[]): Buffer {
  const message = pae(payloadType, payload);
  const signatures = signers.map((s) => {
    const alg = digestFor(s.privateKey);
    const sig =
      s.privateKey.asymmetricKeyType === 'rsa'
        ? cryptoSign(alg, message, { key: s.privateKey, padding: 1 /* RSA_PKCS1_PADDING */ })
        : cryptoSign(alg, message, { key: s.privateKey, dsaEncoding: 'der' });
    return { keyid: keyFingerprint(s.publicKey), sig: sig.toString('base64') };
  });
  const env: Envelope = { payloadType, payload: payload.toString('base64'), signatures };
  return Buffer.from(JSON.stringify(env), 'utf8');
}

/** Parses an envelope; undefined when the bytes are not one (so the caller can try PGP). */
export function parseEnvelope(data: Buffer): Envelope | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  const e = doc as Partial<Envelope>;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    typeof e.payloadType !== 'string' ||
    typeof e.payload !== 'string' ||
    !Array.isArray(e.signatures)
  )
    return undefined;
  const signatures = e.signatures.filter(
    (s): s is DsseSignature =>
      typeof s === 'object' &&
      s !== null &&
      typeof s.sig === 'string' &&
      (s.keyid === undefined || typeof s.keyid === 'string'),
  );
  return {
    payloadType: e.payloadType,
    payload: e.payload,
    signatures: signatures.map((s) => ({ keyid: s.keyid ?? '', sig: s.sig })),
  };
}

const STRICT_B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The keys (by fingerprint) whose signature over the envelope is valid.
 * Every signature is tried against every key: a keyid is only a hint.
 */
export function verifyEnvelope(
  env: Envelope,
  expectedType: string,
  keys: KeyObject[],
): { payload: Buffer; validKeys: string[] } {
  if (env.payloadType !== expectedType)
    throw new Error(`payload type ${JSON.stringify(env.payloadType).slice(0, 80)} is not ${expectedType}`);
  if (!STRICT_B64.test(env.payload)) throw new Error('the payload is not base64');
  const payload = Buffer.from(env.payload, 'base64');
  const message = pae(env.payloadType, payload);
  const valid = new Set<string>();
  for (const key of keys) {
    const alg = digestFor(key);
    for (const s of env.signatures) {
      if (!STRICT_B64.test(s.sig)) continue;
      const sig = Buffer.from(s.sig, 'base64');
      const ok =
        key.asymmetricKeyType === 'rsa'
          ? cryptoVerify(alg, message, { key, padding: 1 }, sig)
          : cryptoVerify(alg, message, { key, dsaEncoding: 'der' }, sig);
      if (ok) valid.add(keyFingerprint(key));
    }
  }
  return { payload, validKeys: [...valid] };
}
