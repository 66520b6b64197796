/**
 * The pure parts of SIF signing: sylabs' integrity bytes and metadata, DSSE's
 * pre-authentication encoding and key IDs. (The whole format is proven
 * end to end in test/integration/sif-signing.test.ts, which reproduces
 * sylabs' signed images byte for byte.)
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { encodeDescriptor, DataType, GROUP_MASK } from '../../src/sif/format';
import {
  compareMetadata,
  decodeSignatureExtra,
  descriptorIntegrityBytes,
  encodeMetadata,
  headerIntegrityBytes,
  parseMetadata,
  signatureExtra,
  type ImageMetadata,
} from '../../src/sif/integrity';
import { keyFingerprint, pae, parseEnvelope } from '../../src/sif/dsse';

const SYLABS = path.join(__dirname, '..', 'fixtures', 'sylabs');
const D = (c: string) => `sha256:${c.repeat(64)}`;

describe('integrity bytes', () => {
  it('header: launch script, magic, version and UUID only (61 bytes), not arch or times', () => {
    const h = Buffer.alloc(128);
    h.write('#!/x\n', 0);
    h.write('SIF_MAGIC', 0x20);
    h.write('01', 0x2a);
    h.write('02', 0x2d);
    h.fill(7, 0x30, 0x40);
    const a = headerIntegrityBytes(h);
    expect(a).toHaveLength(61);
    const b = Buffer.from(h);
    b.write('04', 0x2d); // arch
    b.writeBigInt64LE(123n, 0x48); // modified
    expect(headerIntegrityBytes(b).equals(a)).toBe(true);
    b[0x31] ^= 1; // UUID
    expect(headerIntegrityBytes(b).equals(a)).toBe(false);
  });

  it('descriptor: relative ID in place of the ID; offset, group and modification time not covered (557 bytes)', () => {
    const d = {
      dataType: DataType.genericJson,
      used: true,
      id: 7,
      groupId: (1 | GROUP_MASK) >>> 0,
      linkedId: 0,
      offset: 40000n,
      size: 2n,
      sizeWithPadding: 2n,
      created: 5n,
      modified: 6n,
      name: 'data.json',
      extra: Buffer.alloc(384),
    };
    const a = descriptorIntegrityBytes(encodeDescriptor(d), 2);
    expect(a).toHaveLength(557);
    expect(a.readInt32LE(0)).toBe(DataType.genericJson);
    expect(a[4]).toBe(1);
    expect(a.readUInt32LE(5)).toBe(2);
    expect(a.readBigInt64LE(13)).toBe(2n); // size
    expect(a.readBigInt64LE(21)).toBe(5n); // created
    expect(a.subarray(45, 54).toString()).toBe('data.json');
    expect(
      descriptorIntegrityBytes(
        encodeDescriptor({ ...d, id: 9, offset: 1n, groupId: (2 | GROUP_MASK) >>> 0, modified: 99n }),
        2,
      ).equals(a),
    ).toBe(true);
    expect(descriptorIntegrityBytes(encodeDescriptor({ ...d, created: 4n }), 2).equals(a)).toBe(false);
  });
});

describe('metadata', () => {
  const m: ImageMetadata = {
    version: 1,
    header: { digest: D('a') },
    objects: [{ relativeId: 0, descriptorDigest: D('b'), objectDigest: D('c') }],
  };

  it("encodes as Go's json.Marshal does and parses back", () => {
    const text = encodeMetadata(m).toString();
    expect(text).toBe(
      `{"version":1,"header":{"digest":"${D('a')}"},"objects":[{"relativeId":0,"descriptorDigest":"${D('b')}","objectDigest":"${D('c')}"}]}`,
    );
    expect(parseMetadata(Buffer.from(text))).toEqual(m);
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['version 2', '{"version":2}', /not version 1/],
    ['a short digest', `{"version":1,"header":{"digest":"sha256:abc"},"objects":[]}`, /header digest is not a digest/],
    ['no objects', `{"version":1,"header":{"digest":"${D('a')}"},"objects":[]}`, /lists no objects/],
    ['md5', `{"version":1,"header":{"digest":"md5:${'a'.repeat(32)}"},"objects":[]}`, /not a digest/],
  ])('refuses %s', (_what, text, re) => {
    expect(() => parseMetadata(Buffer.from(text))).toThrow(re);
  });

  it('names each difference', () => {
    const now: ImageMetadata = {
      version: 1,
      header: { digest: D('0') },
      objects: [
        { relativeId: 0, descriptorDigest: D('b'), objectDigest: D('d') },
        { relativeId: 1, descriptorDigest: D('e'), objectDigest: D('f') },
      ],
    };
    expect(compareMetadata(m, now, new Map([[3, 'rootfs']]), 3)).toEqual([
      'the SIF header (launch script, magic, version or UUID) changed',
      'the data of object 3 (rootfs) changed',
      'object 4 is in the group but not signed',
    ]);
  });

  it('signature extra: hash type then the PGP fingerprint', () => {
    const fp = Buffer.from('12045c8c0b1004d058de4beda20c27ee7ff7ba84', 'hex');
    expect(decodeSignatureExtra(signatureExtra('sha256', fp))).toEqual({ hash: 'sha256', fingerprint: fp });
    expect(decodeSignatureExtra(signatureExtra('sha384'))).toEqual({ hash: 'sha384', fingerprint: undefined });
  });
});

describe('DSSE', () => {
  it("PAE as the DSSE spec's example gives it", () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it("key IDs are OpenSSH SHA256 fingerprints, as in sylabs' signed image", () => {
    const sif = readFileSync(path.join(SYLABS, 'one-group-signed-dsse.sif'));
    const env = parseEnvelope(sif.subarray(40960));
    expect(env?.signatures.map((s) => s.keyid)).toEqual([
      keyFingerprint(createPublicKey(readFileSync(path.join(SYLABS, 'ed25519-public.pem')))),
      keyFingerprint(createPublicKey(readFileSync(path.join(SYLABS, 'rsa-public.pem')))),
    ]);
    expect(keyFingerprint(createPublicKey(readFileSync(path.join(SYLABS, 'ecdsa-public.pem'))))).toMatch(
      /^SHA256:[A-Za-z0-9+/]{43}$/,
    );
  });

  it('parseEnvelope says undefined for what is not one', () => {
    expect(parseEnvelope(Buffer.from('-----BEGIN PGP SIGNED MESSAGE-----'))).toBeUndefined();
    expect(parseEnvelope(Buffer.from('{"payload":1}'))).toBeUndefined();
  });
});
