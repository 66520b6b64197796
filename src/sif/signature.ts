/**
 * Signing and verifying a SIF file (the effects over integrity.ts, dsse.ts
 * and pgp.ts). Each reads the file once: the head (header and descriptor
 * table) in one read, then every covered object streamed through its hash,
 * never held. Signing appends the signature object through update.ts (data
 * first, then head and table in one write).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { InputError, InterruptedError, RefusedError } from '../errors';
import { escapeForMessage } from '../validate/names';
import { DataType, HEADER_SIZE } from './format';
import { appendObjects, openSif, readObject, type OpenSif } from './update';
import {
  METADATA_MEDIA_TYPE,
  compareMetadata,
  decodeSignatureExtra,
  digestNamesOf,
  digestOf,
  encodeMetadata,
  groupIds,
  groupObjects,
  groupOf,
  groupSignatures,
  headerIntegrityBytes,
  imageMetadata,
  nodeDigestName,
  parseMetadata,
  signatureExtra,
  signatureObject,
  type DigestName,
  type ImageMetadata,
  type RawDescriptor,
} from './integrity';
import { keyFingerprint, parseEnvelope, signEnvelope, verifyEnvelope } from './dsse';
import {
  clearSign,
  isClearSigned,
  pgpFingerprint,
  pgpPublicOf,
  pgpSigningDate,
  verifyClearSigned,
  type PgpPublicKey,
} from './pgp';
import type { SigningKey } from './keys';

const CHUNK = 4 << 20;
/** A signature object is small; a bigger one is not read into memory. */
const MAX_SIGNATURE = 1 << 20;

/**
 * Digests of the objects, each read once, in file order, through every hash
 * asked for. Two buffers: the next chunk is read while this one is hashed.
 */
async function objectDigests(
  o: OpenSif,
  objects: RawDescriptor[],
  names: DigestName[],
  signal?: AbortSignal,
): Promise<Map<number, Map<DigestName, string>>> {
  const out = new Map<number, Map<DigestName, string>>();
  const bufs = [Buffer.alloc(CHUNK), Buffer.alloc(CHUNK)];
  for (const r of [...objects].sort((a, b) => (a.d.offset < b.d.offset ? -1 : 1))) {
    const hashes = names.map((n) => [n, createHash(nodeDigestName(n))] as const);
    const end = Number(r.d.offset + r.d.size);
    const readAt = (pos: number, i: number) =>
      pos < end ? o.fh.read(bufs[i], 0, Math.min(CHUNK, end - pos), pos) : Promise.resolve({ bytesRead: 0 });
    let pos = Number(r.d.offset);
    let i = 0;
    let pending = readAt(pos, i);
    while (pos < end) {
      if (signal?.aborted) throw new InterruptedError('interrupted while reading the SIF');
      const { bytesRead } = await pending;
      if (bytesRead === 0)
        throw new InputError('bad-sif', `${escapeForMessage(o.file)}: object ${r.d.id} ends past the end of the file`);
      pos += bytesRead;
      pending = readAt(pos, 1 - i);
      const chunk = bufs[i].subarray(0, bytesRead);
      for (const [, h] of hashes) h.update(chunk);
      i = 1 - i;
    }
    out.set(r.d.id, new Map(hashes.map(([n, h]) => [n, `${n}:${h.digest('hex')}`])));
  }
  return out;
}

function metadataNow(
  o: OpenSif,
  objects: RawDescriptor[],
  digests: Map<number, Map<DigestName, string>>,
  name: DigestName,
): ImageMetadata {
  return imageMetadata(
    digestOf(name, headerIntegrityBytes(o.head.subarray(0, HEADER_SIZE))),
    objects.map((r) => ({ r, objectDigest: digests.get(r.d.id)!.get(name)! })),
    name,
  );
}

export interface Verifiers {
  /** DSSE public keys (from PEM files or checked certificates). */
  keys: KeyObject[];
  /** PGP public keys. */
  keyring: PgpPublicKey[];
}

export interface SignatureCheck {
  /** The signature object's ID. */
  id: number;
  group: number;
  format: 'dsse' | 'pgp' | 'unknown';
  /** Fingerprints of the given keys that signed it (DSSE: OpenSSH SHA256; PGP: primary key fingerprint). */
  signers: string[];
  /** Empty when the signature is valid and everything it covers is unchanged. */
  problems: string[];
}

export interface VerifyReport {
  file: string;
  groups: Array<{ group: number; objects: number[]; verified: boolean; signatures: SignatureCheck[] }>;
  /**
   * Objects other than signatures that are in no group: no signature can
   * cover them, so a file holding one is not verified (sylabs' Verify
   * refuses it the same way: errNonGroupedObject, whatever groups are asked).
   */
  ungrouped: Array<{ id: number; name: string }>;
  ok: boolean;
}

/** Objects no signature can cover: in no group, and not a signature themselves. */
function ungroupedObjects(all: RawDescriptor[]): VerifyReport['ungrouped'] {
  return all
    .filter((r) => r.d.used && groupOf(r.d) === 0 && r.d.dataType !== DataType.signature)
    .map((r) => ({ id: r.d.id, name: r.d.name }));
}

async function checkEnvelope(
  o: OpenSif,
  sig: RawDescriptor,
  v: Verifiers,
): Promise<{ format: SignatureCheck['format']; signers: string[]; metadata?: ImageMetadata; problem?: string }> {
  // A signature object too big to be one is someone's data, not a signature: it counts as none.
  if (sig.d.size > BigInt(MAX_SIGNATURE))
    return { format: 'unknown', signers: [], problem: `${sig.d.size} bytes, too big to be a signature` };
  const data = await readObject(o, sig, MAX_SIGNATURE);
  const env = parseEnvelope(data);
  const { fingerprint } = decodeSignatureExtra(sig.d.extra);
  if (env) {
    if (v.keys.length === 0)
      return { format: 'dsse', signers: [], problem: 'a DSSE signature, and no --key or --cert was given' };
    // A signature naming a given key that the key does not verify is corrupt (or forged), not someone else's:
    // it counts against the group, as sylabs' verifier counts every signature.
    const given = new Set(v.keys.map(keyFingerprint));
    const claimed = [...new Set(env.signatures.map((s) => s.keyid).filter((k) => given.has(k)))];
    try {
      const { payload, validKeys } = verifyEnvelope(env, METADATA_MEDIA_TYPE, v.keys);
      const broken = claimed.filter((k) => !validKeys.includes(k));
      if (broken.length > 0)
        return {
          format: 'dsse',
          signers: broken,
          problem: `its signature by ${broken.join(', ')} does not verify (corrupted, or made over other data)`,
        };
      if (validKeys.length === 0)
        return {
          format: 'dsse',
          signers: [],
          problem: `not signed by a given key (its key IDs: ${env.signatures.map((s) => escapeForMessage(s.keyid, 60)).join(', ') || 'none'})`,
        };
      return { format: 'dsse', signers: validKeys, metadata: parseMetadata(payload) };
    } catch (e) {
      return { format: 'dsse', signers: claimed, problem: (e as Error).message };
    }
  }
  if (isClearSigned(data)) {
    if (v.keyring.length === 0)
      return { format: 'pgp', signers: [], problem: 'a PGP signature, and no --keyring was given' };
    try {
      const r = await verifyClearSigned(data, v.keyring);
      if (r.payload.subarray(0, 9).toString('latin1') === 'SIFHASH:\n')
        return { format: 'pgp', signers: [], problem: 'a legacy (pre-sif 2) signature, which sifkit does not verify' };
      // The descriptor names the signing key (sylabs checks the same: errFingerprintMismatch).
      if (!fingerprint || fingerprint.toString('hex').toUpperCase() !== r.fingerprint)
        return {
          format: 'pgp',
          signers: [r.fingerprint],
          problem: "the fingerprint in its descriptor is not the signing key's",
        };
      return { format: 'pgp', signers: [r.fingerprint], metadata: parseMetadata(r.payload) };
    } catch (e) {
      // Its descriptor names a key of the keyring that does not verify it: corrupt, not someone else's.
      const named = fingerprint?.toString('hex').toUpperCase();
      const given = named && v.keyring.some((k) => pgpFingerprint(k) === named);
      return { format: 'pgp', signers: given ? [named] : [], problem: (e as Error).message };
    }
  }
  return { format: 'unknown', signers: [], problem: 'neither a DSSE envelope nor a PGP clear-signed message' };
}

/**
 * Verifies every signature of the chosen groups (default: every group that
 * has objects) with the given keys. A group is verified when at least one
 * of its signatures is by a given key and every digest it signed matches
 * the file as it is now. Never throws for a bad signature: the report says.
 */
export async function verifySif(
  file: string,
  v: Verifiers,
  opts: { groups?: number[]; signal?: AbortSignal } = {},
): Promise<VerifyReport> {
  const o = await openSif(file, false).catch((e: unknown) => {
    // A SIF whose structure broke (cut short; a count, range or ID edited) is refused as tampered (exit 3);
    // a file that is no SIF at all stays bad input.
    if (e instanceof InputError && e.code === 'bad-sif') throw new RefusedError('bad-sif', e.message, { cause: e });
    throw e;
  });
  try {
    const groups = opts.groups ?? groupIds(o.all);
    for (const g of groups)
      if (groupObjects(o.all, g).length === 0)
        throw new InputError('no-such-group', `${escapeForMessage(file)} has no object group ${g}`);
    const pending: Array<{
      group: number;
      objects: RawDescriptor[];
      checks: Array<SignatureCheck & { metadata?: ImageMetadata }>;
    }> = [];
    for (const group of groups) {
      const objects = groupObjects(o.all, group);
      const checks = [];
      for (const sig of groupSignatures(o.all, group)) {
        const c = await checkEnvelope(o, sig, v);
        checks.push({
          id: sig.d.id,
          group,
          format: c.format,
          signers: c.signers,
          problems: c.problem ? [c.problem] : [],
          metadata: c.metadata,
        });
      }
      pending.push({ group, objects, checks });
    }
    // One pass over the covered objects, with every hash the valid signatures used.
    const names = [
      ...new Set(pending.flatMap((p) => p.checks.flatMap((c) => (c.metadata ? digestNamesOf(c.metadata) : [])))),
    ];
    const covered = pending.filter((p) => p.checks.some((c) => c.metadata)).flatMap((p) => p.objects);
    const digests = names.length > 0 ? await objectDigests(o, covered, names, opts.signal) : new Map();
    const ungrouped = ungroupedObjects(o.all);
    const report: VerifyReport = { file, groups: [], ungrouped, ok: ungrouped.length === 0 };
    for (const p of pending) {
      const nameOf = new Map(p.objects.map((r) => [r.d.id, r.d.name]));
      const minId = p.objects[0].d.id;
      const signatures: SignatureCheck[] = p.checks.map(({ metadata, ...c }) => {
        if (!metadata) return c;
        const name = metadata.header.digest.split(':')[0] as DigestName;
        return { ...c, problems: compareMetadata(metadata, metadataNow(o, p.objects, digests, name), nameOf, minId) };
      });
      if (signatures.length === 0)
        signatures.push({ id: 0, group: p.group, format: 'unknown', signers: [], problems: ['no signature'] });
      const verified =
        signatures.some((s) => s.signers.length > 0 && s.problems.length === 0) &&
        signatures.every((s) => s.signers.length === 0 || s.problems.length === 0);
      report.groups.push({ group: p.group, objects: p.objects.map((r) => r.d.id), verified, signatures });
      if (!verified) report.ok = false;
    }
    return report;
  } finally {
    await o.fh.close();
  }
}

/** The first reason a report is not ok, as one line. */
export function verifyFailure(r: VerifyReport): string | undefined {
  if (r.ungrouped.length > 0) {
    const { id, name } = r.ungrouped[0];
    return `${r.file}: object ${id}${name ? ` ${escapeForMessage(name, 64)}` : ''} is in no object group, so no signature covers it${r.ungrouped.length > 1 ? ` (and ${r.ungrouped.length - 1} more)` : ''}`;
  }
  for (const g of r.groups) {
    if (g.verified) continue;
    const bad =
      g.signatures.find((s) => s.signers.length > 0 && s.problems.length > 0) ??
      g.signatures.find((s) => s.problems.length > 0);
    const what = bad && bad.id ? `signature ${bad.id}` : 'group';
    return `${r.file}: object group ${g.group} is not verified: ${what}: ${bad ? bad.problems.join('; ') : 'no valid signature'}`;
  }
  return undefined;
}

export interface SignResult {
  file: string;
  group: number;
  format: 'dsse' | 'pgp';
  signers: string[];
  /** The new signature object's ID; absent when the group already carried a valid signature by the same keys. */
  id?: number;
  alreadySigned: boolean;
  objects: number[];
}

/**
 * Signs one object group (default 1) with the keys: one DSSE envelope
 * signed by every DSSE key, or one PGP clear-signed message (one PGP key).
 * The signature object's times are the SIF's own modification time, so
 * signing a reproducible SIF with a deterministic key (ed25519, RSA) gives
 * the same bytes every time. Rerunning finds its own signature and stops.
 */
export async function signSif(
  file: string,
  keys: SigningKey[],
  opts: { group?: number; signal?: AbortSignal; now?: Date } = {},
): Promise<SignResult> {
  if (keys.length === 0) throw new InputError('no-key', 'no signing key given');
  const pgp = keys.filter((k) => k.kind === 'pgp');
  if (pgp.length > 0 && keys.length > 1)
    throw new InputError(
      'mixed-keys',
      'sign with one PGP key, or with DSSE keys only: a signature object is one or the other',
    );
  const group = opts.group ?? 1;
  const o = await openSif(file, true);
  try {
    const objects = groupObjects(o.all, group);
    if (objects.length === 0)
      throw new InputError('no-such-group', `${escapeForMessage(file)} has no object group ${group}`);
    const format = pgp.length > 0 ? 'pgp' : 'dsse';
    const signers = keys.map((k) => k.fingerprint);
    // Already signed by these keys and still valid: nothing to do (reruns).
    const existing = groupSignatures(o.all, group);
    if (existing.length > 0) {
      const v: Verifiers = {
        keys: keys.flatMap((k) => (k.kind === 'dsse' ? [k.signer.publicKey] : [])),
        keyring: keys.flatMap((k) => (k.kind === 'pgp' ? [pgpPublicOf(k.key)] : [])),
      };
      for (const sig of existing) {
        const c = await checkEnvelope(o, sig, v);
        if (c.metadata && signers.every((s) => c.signers.includes(s))) {
          const digests = await objectDigests(o, objects, digestNamesOf(c.metadata), opts.signal);
          if (
            compareMetadata(
              c.metadata,
              metadataNow(o, objects, digests, c.metadata.header.digest.split(':')[0] as DigestName),
              new Map(),
              objects[0].d.id,
            ).length === 0
          ) {
            return { file, group, format, signers, alreadySigned: true, objects: objects.map((r) => r.d.id) };
          }
        }
      }
    }
    const digests = await objectDigests(o, objects, ['sha256'], opts.signal);
    const payload = encodeMetadata(metadataNow(o, objects, digests, 'sha256'));
    const time = o.sif.header.modified;
    let data: Buffer;
    let extra: Buffer;
    if (format === 'pgp') {
      const k = pgp[0] as Extract<SigningKey, { kind: 'pgp' }>;
      // PGP needs a real time: the SIF's own when it has one and the key could sign then (reproducible).
      let date: Date;
      try {
        date = await pgpSigningDate(
          k.key,
          time > 0n ? new Date(Number(time) * 1000) : undefined,
          opts.now ?? new Date(),
        );
      } catch (e) {
        throw new InputError('bad-key', `${escapeForMessage(k.file)}: ${(e as Error).message}`);
      }
      const s = await clearSign(payload, k.key, date);
      data = s.data;
      extra = signatureExtra(s.hash, s.fingerprint);
    } else {
      data = signEnvelope(
        METADATA_MEDIA_TYPE,
        payload,
        keys.map((k) => (k as Extract<SigningKey, { kind: 'dsse' }>).signer),
      );
      extra = signatureExtra('sha256');
    }
    if (opts.signal?.aborted) throw new InterruptedError('interrupted before writing the signature');
    const [id] = await appendObjects(o, [{ ...signatureObject(group, data.length, extra), data }], time);
    return { file, group, format, signers, id, alreadySigned: false, objects: objects.map((r) => r.d.id) };
  } finally {
    await o.fh.close();
  }
}
