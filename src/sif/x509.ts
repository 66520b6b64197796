/**
 * The X.509 extensions a certificate chain is judged by (RFC 5280 4.2.1.3,
 * 4.2.1.9, 4.2.1.12, 6.1.4), read from the certificate's DER: node's
 * X509Certificate gives `ca` and the extended key usages, but neither the
 * key usage bits nor the path length. Pure: DER bytes in, findings out.
 */

/** One DER element: its tag and where its content lies. */
interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(der: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error('truncated DER');
  const tag = der[pos];
  let len = der[pos + 1];
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // DER: the shortest length form, at most 4 bytes here (a certificate is small).
    if (n === 0 || n > 4 || start + n > limit) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i];
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error('DER element past its parent');
  return { tag, start, end };
}

function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.start; pos < parent.end;) {
    const t = readTlv(der, pos, parent.end);
    out.push(t);
    pos = t.end;
  }
  return out;
}

function oidText(b: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

export interface Extension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

const SEQUENCE = 0x30;
const EXTENSIONS = 0xa3; // [3] EXPLICIT in TBSCertificate

/** The extensions of a DER certificate (Certificate → TBSCertificate → [3] → SEQUENCE OF Extension). */
export function certificateExtensions(der: Buffer): Extension[] {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== SEQUENCE) throw new Error('not a DER certificate');
  const tbs = children(der, cert)[0];
  if (!tbs || tbs.tag !== SEQUENCE) throw new Error('not a DER certificate');
  const wrapper = children(der, tbs).find((t) => t.tag === EXTENSIONS);
  if (!wrapper) return [];
  const list = children(der, wrapper)[0];
  if (!list || list.tag !== SEQUENCE) throw new Error('bad extensions');
  return children(der, list).map((ext) => {
    const parts = children(der, ext);
    if (parts[0]?.tag !== 0x06) throw new Error('bad extension');
    const critical = parts[1]?.tag === 0x01 && der[parts[1].start] !== 0;
    const octets = parts[parts.length - 1];
    if (octets.tag !== 0x04) throw new Error('bad extension value');
    return {
      oid: oidText(der.subarray(parts[0].start, parts[0].end)),
      critical,
      value: der.subarray(octets.start, octets.end),
    };
  });
}

export const OID = {
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  anyExtendedKeyUsage: '2.5.29.37.0',
} as const;

/** KeyUsage bit names, bit 0 first (RFC 5280 4.2.1.3). */
const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

function keyUsageOf(value: Buffer): Set<KeyUsage> {
  const bits = readTlv(value, 0, value.length);
  if (bits.tag !== 0x03 || bits.end - bits.start < 1) throw new Error('bad keyUsage');
  const bytes = value.subarray(bits.start + 1, bits.end);
  const out = new Set<KeyUsage>();
  KEY_USAGE_BITS.forEach((name, i) => {
    if (i >> 3 < bytes.length && bytes[i >> 3] & (0x80 >> (i & 7))) out.add(name);
  });
  return out;
}

function basicConstraintsOf(value: Buffer): { ca: boolean; pathLen?: number } {
  const seq = readTlv(value, 0, value.length);
  if (seq.tag !== SEQUENCE) throw new Error('bad basicConstraints');
  let ca = false;
  let pathLen: number | undefined;
  for (const t of children(value, seq)) {
    if (t.tag === 0x01) ca = value[t.start] !== 0;
    else if (t.tag === 0x02) {
      if (t.end - t.start > 4 || value[t.start] & 0x80) throw new Error('bad pathLenConstraint');
      pathLen = value.subarray(t.start, t.end).reduce((n, b) => n * 256 + b, 0);
    }
  }
  return { ca, pathLen };
}

function extKeyUsageOf(value: Buffer): string[] {
  const seq = readTlv(value, 0, value.length);
  if (seq.tag !== SEQUENCE) throw new Error('bad extKeyUsage');
  return children(value, seq).map((t) => oidText(value.subarray(t.start, t.end)));
}

/** What a verifier judges a certificate by; absent fields mean the extension is absent. */
export interface CertificateConstraints {
  keyUsage?: Set<KeyUsage>;
  basicConstraints?: { ca: boolean; pathLen?: number };
  extKeyUsage?: string[];
  /** Critical extensions sifkit does not check: RFC 5280 says to refuse such a certificate. */
  unknownCritical: string[];
}

const UNDERSTOOD = new Set<string>([
  OID.keyUsage,
  OID.basicConstraints,
  OID.extKeyUsage,
  OID.subjectKeyId,
  OID.authorityKeyId,
  OID.subjectAltName,
]);

/** Reads the constraints of a DER certificate; throws a one-line Error on malformed DER. */
export function certificateConstraints(der: Buffer): CertificateConstraints {
  const out: CertificateConstraints = { unknownCritical: [] };
  for (const e of certificateExtensions(der)) {
    if (e.oid === OID.keyUsage) out.keyUsage = keyUsageOf(e.value);
    else if (e.oid === OID.basicConstraints) out.basicConstraints = basicConstraintsOf(e.value);
    else if (e.oid === OID.extKeyUsage) out.extKeyUsage = extKeyUsageOf(e.value);
    if (e.critical && !UNDERSTOOD.has(e.oid)) out.unknownCritical.push(e.oid);
  }
  return out;
}

/** Extended key usage allows code signing: absent (any use), code signing, or anyExtendedKeyUsage (as Go's x509 judges a chain for apptainer). */
export function allowsCodeSigning(c: CertificateConstraints): boolean {
  return !c.extKeyUsage || c.extKeyUsage.includes(OID.codeSigning) || c.extKeyUsage.includes(OID.anyExtendedKeyUsage);
}

/**
 * Why a certificate may not sign the one below it, or undefined when it
 * may: a CA (basicConstraints cA), with keyCertSign when it states key
 * usages, at most `pathLen` CA certificates between it and the leaf
 * (`intermediatesBelow`), code signing among its extended key usages when
 * it lists any, and no critical extension left unchecked.
 */
export function issuerProblem(c: CertificateConstraints, intermediatesBelow: number): string | undefined {
  if (!c.basicConstraints?.ca) return 'is not a CA (basicConstraints without cA)';
  if (c.keyUsage && !c.keyUsage.has('keyCertSign'))
    return 'may not sign certificates (its keyUsage has no keyCertSign)';
  const max = c.basicConstraints.pathLen;
  if (max !== undefined && intermediatesBelow > max)
    return `allows ${max} CA certificate${max === 1 ? '' : 's'} below it (pathLen ${max}), and the chain has ${intermediatesBelow}`;
  if (!allowsCodeSigning(c)) return 'limits its extended key usage to uses other than code signing';
  if (c.unknownCritical.length > 0) return `has a critical extension sifkit does not check (${c.unknownCritical[0]})`;
  return undefined;
}

/** Why a leaf certificate's key may not sign a SIF, or undefined when it may. */
export function leafProblem(c: CertificateConstraints): string | undefined {
  if (c.keyUsage && !c.keyUsage.has('digitalSignature')) return 'its keyUsage does not include digitalSignature';
  if (!allowsCodeSigning(c)) return 'its extended key usage does not include code signing';
  if (c.unknownCritical.length > 0)
    return `it has a critical extension sifkit does not check (${c.unknownCritical[0]})`;
  return undefined;
}
