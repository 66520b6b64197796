/**
 * Signing and verifying a SIF file (the effects over integrity.ts, dsse.ts
 * and pgp.ts). Each reads the file once: the head (header and descriptor
 * table) in one read, then every covered object streamed through its hash,
 * never held. Signing appends the signature object, then rewrites head and
 * table in one write, so an interrupted run leaves either the old file (with
 * unreferenced bytes past its end, which a rerun overwrites) or the signed one.
 */
import { promises as fs } from 'node:fs';
import { createHash, type KeyObject } from 'node:crypto';
import { InputError, InterruptedError, RefusedError, errnoCode, isSifkitError } from '../errors';
import { openRegular } from '../util/files';
import { escapeForMessage } from '../validate/names';
import { HEADER_SIZE, encodeDescriptor } from './format';
import { SIF_PREFETCH, parseSifHead, sifHeadLength, type SifImage } from './file';
import {
  METADATA_MEDIA_TYPE, compareMetadata, decodeSignatureExtra, digestNamesOf, digestOf, encodeMetadata, groupIds, groupObjects, groupSignatures,
  headerIntegrityBytes, imageMetadata, nodeDigestName, parseMetadata, planSignatureObject, rawDescriptors, signatureExtra,
  type DigestName, type ImageMetadata, type RawDescriptor,
} from './integrity';
import { parseEnvelope, signEnvelope, verifyEnvelope } from './dsse';
import { clearSign, isClearSigned, verifyClearSigned, type PgpPublicKey } from './pgp';
import type { SigningKey } from './keys';

const CHUNK = 4 << 20;
/** A signature object is small; a bigger one is not read into memory. */
const MAX_SIGNATURE = 1 << 20;

interface OpenSif {
  fh: fs.FileHandle;
  file: string;
  head: Buffer;
  sif: SifImage;
  all: RawDescriptor[];
}

async function openSif(file: string, write: boolean): Promise<OpenSif> {
  let fh: fs.FileHandle;
  try {
    fh = write ? await openForUpdate(file) : await openRegular(file, 'SIF');
  } catch (e) {
    if (isSifkitError(e)) throw e;
    throw new InputError('unreadable-sif', `cannot open ${escapeForMessage(file)}: ${errnoCode(e) ?? (e as Error).message}`);
  }
  try {
    const size = BigInt((await fh.stat()).size);
    let head = Buffer.alloc(SIF_PREFETCH);
    head = head.subarray(0, (await fh.read(head, 0, head.length, 0)).bytesRead);
    const need = sifHeadLength(head, size, file);
    if (need > head.length) {
      head = Buffer.alloc(need);
      await fh.read(head, 0, need, 0);
    }
    head = Buffer.from(head.subarray(0, need));
    const sif = parseSifHead(head, size, file);
    return { fh, file, head, sif, all: rawDescriptors(head, Number(sif.header.descriptorsOffset), Number(sif.header.descriptorsTotal)) };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

async function openForUpdate(file: string): Promise<fs.FileHandle> {
  const st = await fs.stat(file);
  if (!st.isFile()) throw new InputError('not-regular', `${escapeForMessage(file)} is not a regular file`);
  return fs.open(file, 'r+');
}

/** Digests of the objects, each read once, in file order, through every hash asked for. */
async function objectDigests(o: OpenSif, objects: RawDescriptor[], names: DigestName[], signal?: AbortSignal): Promise<Map<number, Map<DigestName, string>>> {
  const out = new Map<number, Map<DigestName, string>>();
  const buf = Buffer.alloc(CHUNK);
  for (const r of [...objects].sort((a, b) => (a.d.offset < b.d.offset ? -1 : 1))) {
    const hashes = names.map((n) => [n, createHash(nodeDigestName(n))] as const);
    let pos = Number(r.d.offset);
    const end = pos + Number(r.d.size);
    while (pos < end) {
      if (signal?.aborted) throw new InterruptedError('interrupted while reading the SIF');
      const { bytesRead } = await o.fh.read(buf, 0, Math.min(CHUNK, end - pos), pos);
      if (bytesRead === 0) throw new InputError('bad-sif', `${escapeForMessage(o.file)}: object ${r.d.id} ends past the end of the file`);
      const chunk = buf.subarray(0, bytesRead);
      for (const [, h] of hashes) h.update(chunk);
      pos += bytesRead;
    }
    out.set(r.d.id, new Map(hashes.map(([n, h]) => [n, `${n}:${h.digest('hex')}`])));
  }
  return out;
}

function metadataNow(o: OpenSif, objects: RawDescriptor[], digests: Map<number, Map<DigestName, string>>, name: DigestName): ImageMetadata {
  return imageMetadata(digestOf(name, headerIntegrityBytes(o.head.subarray(0, HEADER_SIZE))), objects.map((r) => ({ r, objectDigest: digests.get(r.d.id)!.get(name)! })), name);
}

async function readSmall(o: OpenSif, r: RawDescriptor): Promise<Buffer> {
  if (r.d.size > BigInt(MAX_SIGNATURE)) throw new InputError('bad-signature', `${escapeForMessage(o.file)}: signature object ${r.d.id} is ${r.d.size} bytes, too big to be a signature`);
  const b = Buffer.alloc(Number(r.d.size));
  await o.fh.read(b, 0, b.length, Number(r.d.offset));
  return b;
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
  ok: boolean;
}

async function checkEnvelope(o: OpenSif, sig: RawDescriptor, v: Verifiers): Promise<{ format: SignatureCheck['format']; signers: string[]; metadata?: ImageMetadata; problem?: string }> {
  const data = await readSmall(o, sig);
  const env = parseEnvelope(data);
  const { fingerprint } = decodeSignatureExtra(sig.d.extra);
  if (env) {
    if (v.keys.length === 0) return { format: 'dsse', signers: [], problem: 'a DSSE signature, and no --key or --cert was given' };
    try {
      const { payload, validKeys } = verifyEnvelope(env, METADATA_MEDIA_TYPE, v.keys);
      if (validKeys.length === 0) return { format: 'dsse', signers: [], problem: `not signed by a given key (its key IDs: ${env.signatures.map((s) => escapeForMessage(s.keyid, 60)).join(', ') || 'none'})` };
      return { format: 'dsse', signers: validKeys, metadata: parseMetadata(payload) };
    } catch (e) {
      return { format: 'dsse', signers: [], problem: (e as Error).message };
    }
  }
  if (isClearSigned(data)) {
    if (v.keyring.length === 0) return { format: 'pgp', signers: [], problem: 'a PGP signature, and no --keyring was given' };
    try {
      const r = await verifyClearSigned(data, v.keyring);
      if (r.payload.subarray(0, 9).toString('latin1') === 'SIFHASH:\n') return { format: 'pgp', signers: [], problem: 'a legacy (pre-sif 2) signature, which sifkit does not verify' };
      // The descriptor names the signing key (sylabs checks the same: errFingerprintMismatch).
      if (!fingerprint || fingerprint.toString('hex').toUpperCase() !== r.fingerprint) return { format: 'pgp', signers: [], problem: 'the fingerprint in its descriptor is not the signing key\'s' };
      return { format: 'pgp', signers: [r.fingerprint], metadata: parseMetadata(r.payload) };
    } catch (e) {
      return { format: 'pgp', signers: [], problem: (e as Error).message };
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
export async function verifySif(file: string, v: Verifiers, opts: { groups?: number[]; signal?: AbortSignal } = {}): Promise<VerifyReport> {
  const o = await openSif(file, false);
  try {
    const groups = opts.groups ?? groupIds(o.all);
    for (const g of groups) if (groupObjects(o.all, g).length === 0) throw new InputError('no-such-group', `${escapeForMessage(file)} has no object group ${g}`);
    const pending: Array<{ group: number; objects: RawDescriptor[]; checks: Array<SignatureCheck & { metadata?: ImageMetadata }> }> = [];
    for (const group of groups) {
      const objects = groupObjects(o.all, group);
      const checks = [];
      for (const sig of groupSignatures(o.all, group)) {
        const c = await checkEnvelope(o, sig, v);
        checks.push({ id: sig.d.id, group, format: c.format, signers: c.signers, problems: c.problem ? [c.problem] : [], metadata: c.metadata });
      }
      pending.push({ group, objects, checks });
    }
    // One pass over the covered objects, with every hash the valid signatures used.
    const names = [...new Set(pending.flatMap((p) => p.checks.flatMap((c) => (c.metadata ? digestNamesOf(c.metadata) : []))))];
    const covered = pending.filter((p) => p.checks.some((c) => c.metadata)).flatMap((p) => p.objects);
    const digests = names.length > 0 ? await objectDigests(o, covered, names, opts.signal) : new Map();
    const report: VerifyReport = { file, groups: [], ok: true };
    for (const p of pending) {
      const nameOf = new Map(p.objects.map((r) => [r.d.id, r.d.name]));
      const minId = p.objects[0].d.id;
      const signatures: SignatureCheck[] = p.checks.map(({ metadata, ...c }) => {
        if (!metadata) return c;
        const name = metadata.header.digest.split(':')[0] as DigestName;
        return { ...c, problems: compareMetadata(metadata, metadataNow(o, p.objects, digests, name), nameOf, minId) };
      });
      if (signatures.length === 0) signatures.push({ id: 0, group: p.group, format: 'unknown', signers: [], problems: ['no signature'] });
      const verified = signatures.some((s) => s.signers.length > 0 && s.problems.length === 0) && signatures.every((s) => s.signers.length === 0 || s.problems.length === 0);
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
  for (const g of r.groups) {
    if (g.verified) continue;
    const bad = g.signatures.find((s) => s.signers.length > 0 && s.problems.length > 0) ?? g.signatures.find((s) => s.problems.length > 0);
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
export async function signSif(file: string, keys: SigningKey[], opts: { group?: number; signal?: AbortSignal; now?: Date } = {}): Promise<SignResult> {
  if (keys.length === 0) throw new InputError('no-key', 'no signing key given');
  const pgp = keys.filter((k) => k.kind === 'pgp');
  if (pgp.length > 0 && keys.length > 1) throw new InputError('mixed-keys', 'sign with one PGP key, or with DSSE keys only: a signature object is one or the other');
  const group = opts.group ?? 1;
  const o = await openSif(file, true);
  try {
    const objects = groupObjects(o.all, group);
    if (objects.length === 0) throw new InputError('no-such-group', `${escapeForMessage(file)} has no object group ${group}`);
    const format = pgp.length > 0 ? 'pgp' : 'dsse';
    const signers = keys.map((k) => k.fingerprint);
    // Already signed by these keys and still valid: nothing to do (reruns).
    const existing = groupSignatures(o.all, group);
    if (existing.length > 0) {
      const v: Verifiers = { keys: keys.flatMap((k) => (k.kind === 'dsse' ? [k.signer.publicKey] : [])), keyring: keys.flatMap((k) => (k.kind === 'pgp' ? [k.key.toPublic()] : [])) };
      for (const sig of existing) {
        const c = await checkEnvelope(o, sig, v);
        if (c.metadata && signers.every((s) => c.signers.includes(s))) {
          const digests = await objectDigests(o, objects, digestNamesOf(c.metadata), opts.signal);
          if (compareMetadata(c.metadata, metadataNow(o, objects, digests, c.metadata.header.digest.split(':')[0] as DigestName), new Map(), objects[0].d.id).length === 0) {
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
      // PGP needs a real time: the SIF's own when it has one (reproducible), else now.
      const date = time > 0n ? new Date(Number(time) * 1000) : (opts.now ?? new Date());
      const s = await clearSign(payload, k.key, date);
      data = s.data;
      extra = signatureExtra(s.hash, s.fingerprint);
    } else {
      data = signEnvelope(METADATA_MEDIA_TYPE, payload, keys.map((k) => (k as Extract<SigningKey, { kind: 'dsse' }>).signer));
      extra = signatureExtra('sha256');
    }
    if (opts.signal?.aborted) throw new InterruptedError('interrupted before writing the signature');
    let plan;
    try {
      plan = planSignatureObject(o.all, o.sif.header.dataOffset, data.length, group, time, extra);
    } catch (e) {
      throw new RefusedError('sif-full', `${escapeForMessage(file)}: ${(e as Error).message}`);
    }
    const end = plan.descriptor.offset + plan.descriptor.size;
    await o.fh.write(data, 0, data.length, Number(plan.descriptor.offset));
    await o.fh.sync();
    const head = Buffer.from(o.head);
    encodeDescriptor(plan.descriptor).copy(head, Number(o.sif.header.descriptorsOffset) + plan.slot * 585);
    head.writeBigInt64LE(time, 0x48);
    head.writeBigInt64LE(o.sif.header.descriptorsFree - 1n, 0x50);
    head.writeBigInt64LE(end - o.sif.header.dataOffset, 0x78);
    // Header and table in one write: a reader sees the old or the new table, never half of one.
    await o.fh.write(head, 0, head.length, 0);
    if (BigInt((await o.fh.stat()).size) > end) await o.fh.truncate(Number(end));
    await o.fh.sync();
    return { file, group, format, signers, id: plan.descriptor.id, alreadySigned: false, objects: objects.map((r) => r.d.id) };
  } finally {
    await o.fh.close();
  }
}
