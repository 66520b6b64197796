/**
 * SIF signatures against independent parts: sylabs' own signed test images
 * and keys (test/fixtures/sylabs, BSD-3), sylabs' Go library as Debian
 * packages it (built here offline in GOPATH mode), gpg, siftool, openssl.
 */
import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as openpgp from 'openpgp';
import { runCli } from '../support/cli';
import { makeSif } from '../support/sifs';
import { loadSigningKey, loadVerifiers } from '../../src/sif/keys';
import { signSif, verifyFailure, verifySif } from '../../src/sif/signature';
import { pgpFingerprint, readPgpPrivateKey } from '../../src/sif/pgp';

const run = promisify(execFile);
const SYLABS = path.join(__dirname, '..', 'fixtures', 'sylabs');
const GO_VERIFIER = path.join(__dirname, '..', 'fixtures', 'go-verifier', 'main.go');

jest.setTimeout(180_000);

let work: string;
/** sylabs' private test keys, copied to 0600 files (git keeps no modes). */
const key = async (name: string): Promise<string> => {
  const p = path.join(work, 'keys', name);
  await fs.mkdir(path.dirname(p), { recursive: true });
  await fs.copyFile(path.join(SYLABS, name), p);
  await fs.chmod(p, 0o600);
  return p;
};
const copy = async (name: string, as = name): Promise<string> => {
  const p = path.join(work, as);
  await fs.copyFile(path.join(SYLABS, name), p);
  return p;
};
const trust = {
  ed: path.join(SYLABS, 'ed25519-public.pem'),
  rsa: path.join(SYLABS, 'rsa-public.pem'),
  ecdsa: path.join(SYLABS, 'ecdsa-public.pem'),
  ring: path.join(SYLABS, 'private.asc'),
};

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h26-sign-'));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe("sylabs' signed test images", () => {
  it.each(['one-group-signed-dsse.sif', 'two-groups-signed-dsse.sif'])(
    'verifies %s with their ed25519 and RSA keys, each alone',
    async (name) => {
      for (const k of [trust.ed, trust.rsa]) {
        const r = await verifySif(path.join(SYLABS, name), await loadVerifiers({ keys: [k] }));
        expect(verifyFailure(r)).toBeUndefined();
        expect(r.ok).toBe(true);
        expect(r.groups.every((g) => g.verified && g.signatures[0].format === 'dsse')).toBe(true);
      }
    },
  );

  it.each(['one-group-signed-pgp.sif', 'two-groups-signed-pgp.sif'])('verifies %s with their PGP key', async (name) => {
    const r = await verifySif(path.join(SYLABS, name), await loadVerifiers({ keyring: trust.ring }));
    expect(r.ok).toBe(true);
    expect(r.groups[0].signatures[0]).toMatchObject({
      format: 'pgp',
      signers: ['12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84'],
      problems: [],
    });
  });

  it('refuses them with a key that did not sign', async () => {
    const r = await verifySif(
      path.join(SYLABS, 'one-group-signed-dsse.sif'),
      await loadVerifiers({ keys: [trust.ecdsa] }),
    );
    expect(r.ok).toBe(false);
    expect(verifyFailure(r)).toMatch(/group 1 is not verified: signature 3: not signed by a given key/);
  });

  it('reproduces their ed25519+RSA DSSE image byte for byte from their unsigned one (both key types are deterministic; sylabs signs with OptSignDeterministic)', async () => {
    const mine = await copy('one-group.sif', 'repro.sif');
    const r = await signSif(mine, [
      await loadSigningKey(await key('ed25519-private.pem')),
      await loadSigningKey(await key('rsa-private.pem')),
    ]);
    expect(r).toMatchObject({ id: 3, alreadySigned: false, objects: [1, 2] });
    expect((await fs.readFile(mine)).equals(await fs.readFile(path.join(SYLABS, 'one-group-signed-dsse.sif')))).toBe(
      true,
    );
    // Rerun: finds its own signature, changes nothing.
    const again = await signSif(mine, [
      await loadSigningKey(await key('ed25519-private.pem')),
      await loadSigningKey(await key('rsa-private.pem')),
    ]);
    expect(again.alreadySigned).toBe(true);
    expect((await fs.readFile(mine)).equals(await fs.readFile(path.join(SYLABS, 'one-group-signed-dsse.sif')))).toBe(
      true,
    );
  });

  it('reproduces their two-group DSSE image too (one signature per group when each is signed)', async () => {
    const mine = await copy('two-groups.sif', 'repro2.sif');
    const keys = [
      await loadSigningKey(await key('ed25519-private.pem')),
      await loadSigningKey(await key('rsa-private.pem')),
    ];
    await signSif(mine, keys, { group: 1 });
    await signSif(mine, keys, { group: 2 });
    expect((await fs.readFile(mine)).equals(await fs.readFile(path.join(SYLABS, 'two-groups-signed-dsse.sif')))).toBe(
      true,
    );
  });
});

describe('sifkit signatures', () => {
  let sif: string;
  beforeAll(async () => {
    sif = path.join(work, 'own.sif');
    await makeSif(sif, { stem: 'lumi-h26-sign', dockerhash: '0123456789ab', created: '2026-01-02T03:04:05Z' });
  });

  it('are deterministic with ed25519: the same SIF signed twice gives the same bytes', async () => {
    const a = path.join(work, 'det-a.sif');
    const b = path.join(work, 'det-b.sif');
    await fs.copyFile(sif, a);
    await fs.copyFile(sif, b);
    const k = await loadSigningKey(await key('ed25519-private.pem'));
    await signSif(a, [k]);
    await signSif(b, [k]);
    expect((await fs.readFile(a)).equals(await fs.readFile(b))).toBe(true);
  });

  it('sign and verify with ECDSA P-256 (sylabs key) and P-384, RSA and ed25519', async () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const p384priv = path.join(work, 'keys', 'p384.pem');
    const p384pub = path.join(work, 'keys', 'p384.pub.pem');
    await fs.writeFile(p384priv, p384.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await fs.writeFile(p384pub, p384.publicKey.export({ type: 'spki', format: 'pem' }));
    const cases: Array<[string, string]> = [
      [await key('ecdsa-private.pem'), trust.ecdsa],
      [p384priv, p384pub],
      [await key('rsa-private.pem'), trust.rsa],
      [await key('ed25519-private.pem'), trust.ed],
    ];
    for (const [priv, pub] of cases) {
      const f = path.join(work, `kt-${path.basename(priv)}.sif`);
      await fs.copyFile(sif, f);
      await signSif(f, [await loadSigningKey(priv)]);
      expect((await verifySif(f, await loadVerifiers({ keys: [pub] }))).ok).toBe(true);
      expect((await verifySif(f, await loadVerifiers({ keys: [trust.ed === pub ? trust.rsa : trust.ed] }))).ok).toBe(
        false,
      );
    }
  });

  it('catch a one-byte change in the header, a descriptor or an object, and name it; siftool still reads the file', async () => {
    const signed = path.join(work, 'tamper-base.sif');
    await fs.copyFile(sif, signed);
    await signSif(signed, [await loadSigningKey(await key('ed25519-private.pem'))]);
    const v = await loadVerifiers({ keys: [trust.ed] });
    expect((await verifySif(signed, v)).ok).toBe(true);
    const listing = execFileSync('siftool', ['list', signed], { encoding: 'utf8' });
    expect(listing).toMatch(/\|NONE\s+\|1\s+\(G\)\s+\|.*\|Signature \(SHA-256\)/);
    const image = await fs.readFile(signed);
    const descOffset = 4096;
    const part = Number(image.readBigInt64LE(descOffset + 3 * 585 + 17)); // object 4: the partition
    const cases: Array<[string, number, RegExp]> = [
      ['launch script', 5, /the SIF header .* changed/],
      ['UUID', 0x30 + 3, /the SIF header .* changed/],
      ['descriptor name of object 1', descOffset + 73 + 2, /the descriptor of object 1 changed/],
      ['descriptor name of object 2', descOffset + 585 + 73, /the descriptor of object 2 \(.*\) changed/],
      ['partition data', part + 100, /the data of object 4 changed/],
    ];
    for (const [what, offset, expected] of cases) {
      const f = path.join(work, `tampered-${what.replace(/\W+/g, '-')}.sif`);
      const copyBytes = Buffer.from(image);
      copyBytes[offset] ^= 0x01;
      await fs.writeFile(f, copyBytes);
      const r = await verifySif(f, v);
      expect(r.ok).toBe(false);
      expect(verifyFailure(r)).toMatch(expected);
    }
  });

  it('through the CLI: exit 3 and one line on a tampered file, exit 2 on a private key readable by others, nothing written', async () => {
    const f = path.join(work, 'cli.sif');
    await fs.copyFile(sif, f);
    const priv = await key('ed25519-private.pem');
    const ok = await runCli(['sign', f, '--key', priv, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      ok: true,
      format: 'dsse',
      signers: ['SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs'],
    });
    expect((await runCli(['verify-signature', f, '--key', trust.ed])).code).toBe(0);
    const bytes = await fs.readFile(f);
    bytes[bytes.length - 5000] ^= 0x80; // inside the partition (the signature is ~400 bytes at the end)
    await fs.writeFile(f, bytes);
    const bad = await runCli(['verify-signature', f, '--key', trust.ed]);
    expect(bad.code).toBe(3);
    expect(
      bad.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('sifkit: error')),
    ).toHaveLength(1);
    expect(bad.stderr).toMatch(/the data of object \d+ .*changed/);

    const loose = path.join(work, 'keys', 'loose.pem');
    await fs.copyFile(priv, loose);
    await fs.chmod(loose, 0o640);
    const before = await fs.readFile(sif);
    const f2 = path.join(work, 'cli2.sif');
    await fs.writeFile(f2, before);
    const refused = await runCli(['sign', f2, '--key', loose]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /^sifkit: error: .*loose\.pem"?: private key file is readable by group or others \(mode 0640\)/m,
    );
    expect(refused.stderr).not.toMatch(/PRIVATE KEY|MC4CAQ/);
    expect((await fs.readFile(f2)).equals(before)).toBe(true);
  });

  it('X.509: a certificate that chains to the CA pool is trusted; one from another CA is refused (exit 3)', async () => {
    const d = path.join(work, 'x509');
    await fs.mkdir(d);
    const ossl = (...args: string[]) => run('openssl', args, { cwd: d });
    for (const ca of ['ca', 'other-ca']) {
      await ossl(
        'req',
        '-x509',
        '-newkey',
        'ed25519',
        '-nodes',
        '-keyout',
        `${ca}.key`,
        '-out',
        `${ca}.pem`,
        '-days',
        '2',
        '-subj',
        `/CN=${ca}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign',
      );
    }
    await ossl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'signer.key',
      '-out',
      'signer.csr',
      '-subj',
      '/CN=sifkit test signer',
    );
    await fs.writeFile(path.join(d, 'ext.cnf'), 'extendedKeyUsage=codeSigning\nbasicConstraints=CA:FALSE\n');
    await ossl(
      'x509',
      '-req',
      '-in',
      'signer.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'signer.pem',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    );
    await fs.chmod(path.join(d, 'signer.key'), 0o600);
    const f = path.join(work, 'x509.sif');
    await fs.copyFile(sif, f);
    await signSif(f, [await loadSigningKey(path.join(d, 'signer.key'))]);
    const good = await runCli([
      'verify-signature',
      f,
      '--cert',
      path.join(d, 'signer.pem'),
      '--ca-pool',
      path.join(d, 'ca.pem'),
      '--json',
    ]);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout).groups[0].verified).toBe(true);
    const other = await runCli([
      'verify-signature',
      f,
      '--cert',
      path.join(d, 'signer.pem'),
      '--ca-pool',
      path.join(d, 'other-ca.pem'),
    ]);
    expect(other.code).toBe(3);
    expect(other.stderr).toMatch(/not issued by a CA of/);
  });
});

describe('cases the code had not seen', () => {
  const DESC = 4096;
  const SLOT = 585;
  let base: string;
  let v: { ed: Awaited<ReturnType<typeof loadVerifiers>>; both: Awaited<ReturnType<typeof loadVerifiers>> };
  beforeAll(async () => {
    base = path.join(work, 'unseen.sif');
    await makeSif(base, { stem: 'lumi-h44-unseen', dockerhash: '0123456789ab', created: '2026-01-02T03:04:05Z' });
    await signSif(base, [await loadSigningKey(await key('ed25519-private.pem'))]);
    v = {
      ed: await loadVerifiers({ keys: [trust.ed] }),
      both: await loadVerifiers({ keys: [trust.ed, trust.rsa] }),
    };
  });
  /** A copy of `from` changed by `edit` (a plain function of its bytes). */
  const variant = async (name: string, edit: (b: Buffer) => void, from = base): Promise<string> => {
    const f = path.join(work, `unseen-${name}.sif`);
    const b = await fs.readFile(from);
    edit(b);
    await fs.writeFile(f, b);
    return f;
  };
  /** Changes one base64 character after the last `marker` in the file (inside the signature object). */
  const flipAfter = (marker: string, at: number) => (b: Buffer) => {
    const i = b.lastIndexOf(marker) + marker.length + at;
    b[i] = b[i] === 0x41 ? 0x42 : 0x41; // 'A' <-> 'B': still base64
  };

  it('an object in no group: not verified, named, exit 3 (sylabs: errNonGroupedObject), also when only group 1 is asked', async () => {
    const f = path.join(work, 'unseen-ungrouped.sif');
    await fs.copyFile(base, f);
    const extra = path.join(work, 'extra.bin');
    await fs.writeFile(extra, 'not signed\n');
    execFileSync('siftool', ['add', f, extra, '--datatype', '7', '--groupid', '0', '--filename', 'extra.bin']);
    const r = await verifySif(f, v.ed);
    expect(r.groups.every((g) => g.verified)).toBe(true);
    expect(r.ungrouped).toEqual([{ id: 6, name: 'extra.bin' }]);
    expect(r.ok).toBe(false);
    expect(verifyFailure(r)).toMatch(/object 6 "extra\.bin" is in no object group, so no signature covers it/);
    for (const args of [[], ['--group', '1']]) {
      const cli = await runCli(['verify-signature', f, '--key', trust.ed, ...args]);
      expect(cli.code).toBe(3);
      expect(cli.stdout).toMatch(/^object 6 \(extra\.bin\): in no object group, NOT covered by any signature$/m);
      expect(cli.stderr.split('\n').filter((l) => l.startsWith('sifkit: error'))).toHaveLength(1);
    }
    // The untouched file still verifies, with an empty list.
    expect((await verifySif(base, v.ed)).ungrouped).toEqual([]);
  });

  it('signed twice (ed25519, then RSA): each key alone verifies; a corrupted second signature fails when its key is given', async () => {
    const twice = path.join(work, 'unseen-twice.sif');
    await fs.copyFile(base, twice);
    const second = await signSif(twice, [await loadSigningKey(await key('rsa-private.pem'))]);
    expect(second).toMatchObject({ id: 6, alreadySigned: false });
    for (const k of [trust.ed, trust.rsa])
      expect((await verifySif(twice, await loadVerifiers({ keys: [k] }))).ok).toBe(true);
    const both = await verifySif(twice, v.both);
    expect(both.ok).toBe(true);
    expect(both.groups[0].signatures.map((s) => [s.id, s.problems])).toEqual([
      [5, []],
      [6, []],
    ]);
    expect((await verifySif(twice, await loadVerifiers({ keys: [trust.ecdsa] }))).ok).toBe(false);

    const broken = await variant('twice-broken', flipAfter('"sig":"', 10), twice);
    // Its key not given: someone else's signature, not ours to judge (the ed25519 one covers the group).
    expect((await verifySif(broken, v.ed)).ok).toBe(true);
    const r = await verifySif(broken, v.both);
    expect(r.ok).toBe(false);
    expect(verifyFailure(r)).toMatch(/signature 6: its signature by SHA256:\S+ does not verify/);
  });

  it('a corrupted envelope, payload or signature is refused and named', async () => {
    const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
      ['signature bytes', flipAfter('"sig":"', 3), /signature 5: its signature by SHA256:x6l8Zblp\S+ does not verify/],
      ['payload', flipAfter('"payload":"', 20), /signature 5: its signature by SHA256:x6l8Zblp\S+ does not verify/],
      [
        'envelope',
        (b) => {
          b[b.lastIndexOf('{"payloadType"')] = 0x78;
        },
        /signature 5: neither a DSSE envelope nor a PGP clear-signed message/,
      ],
      [
        'payload type',
        (b) => {
          const i = b.lastIndexOf('application/vnd.sylabs.sif-metadata+json');
          b[i] = 0x41;
        },
        /signature 5: payload type "Application\/vnd\.sylabs\.sif-metadata\+json" is not application/,
      ],
    ];
    for (const [what, edit, expected] of cases) {
      const f = await variant(what.replace(/\W+/g, '-'), edit);
      const cli = await runCli(['verify-signature', f, '--key', trust.ed]);
      expect([what, cli.code]).toEqual([what, 3]);
      expect(cli.stderr).toMatch(expected);
    }
  });

  it('reordered descriptors: a swap of table slots changes nothing signed; a swap of two IDs is caught', async () => {
    const slots = await variant('slots', (b) => {
      const a = Buffer.from(b.subarray(DESC + SLOT, DESC + 2 * SLOT));
      b.copy(b, DESC + SLOT, DESC + 2 * SLOT, DESC + 3 * SLOT);
      a.copy(b, DESC + 2 * SLOT);
    });
    expect(execFileSync('siftool', ['list', slots], { encoding: 'utf8' })).toMatch(/^3\s/m);
    expect(verifyFailure(await verifySif(slots, v.ed))).toBeUndefined();
    const ids = await variant('ids', (b) => {
      b.writeUInt32LE(3, DESC + SLOT + 5);
      b.writeUInt32LE(2, DESC + 2 * SLOT + 5);
    });
    const r = await verifySif(ids, v.ed);
    expect(r.ok).toBe(false);
    expect(verifyFailure(r)).toMatch(/the (descriptor|data) of object [23]/);
  });

  it('a verifying key sifkit does not accept (RSA 1024) is one line, exit 2', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const pub = path.join(work, 'keys', 'rsa1024.pub.pem');
    await fs.writeFile(pub, weak.publicKey.export({ type: 'spki', format: 'pem' }));
    const cli = await runCli(['verify-signature', base, '--key', pub]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/^sifkit: error: .*rsa1024\.pub\.pem"?: a rsa key; sifkit signs with/m);
  });
});

describe("independent verifiers accept sifkit's PGP signatures", () => {
  let signed: string;
  beforeAll(async () => {
    signed = path.join(work, 'pgp.sif');
    await makeSif(signed, { stem: 'lumi-h26-pgp', dockerhash: 'abcdef012345', created: '2026-01-02T03:04:05Z' });
    const r = await signSif(signed, [await loadSigningKey(await key('private.asc'))]);
    expect(r).toMatchObject({ format: 'pgp', signers: ['12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84'] });
  });

  it("sylabs' Go library (golang-github-sylabs-sif-dev, built offline in GOPATH mode)", async () => {
    const gopath = path.join(work, 'gopath');
    await fs.mkdir(path.join(gopath, 'src', 'github.com', 'sylabs', 'sif'), { recursive: true });
    // The packaged source is module v2; GOPATH mode finds it under the /v2 import path through a link.
    await fs.symlink(
      '/usr/share/gocode/src/github.com/sylabs/sif',
      path.join(gopath, 'src', 'github.com', 'sylabs', 'sif', 'v2'),
    );
    await fs.mkdir(path.join(gopath, 'src', 'verify-sif'));
    await fs.copyFile(GO_VERIFIER, path.join(gopath, 'src', 'verify-sif', 'main.go'));
    const env = {
      ...process.env,
      GO111MODULE: 'off',
      GOPATH: `${gopath}:/usr/share/gocode`,
      GOCACHE: path.join(work, 'gocache'),
      GOPROXY: 'off',
      GOFLAGS: '',
    };
    await run('go', ['build', '-o', path.join(work, 'verify-sif'), '.'], {
      cwd: path.join(gopath, 'src', 'verify-sif'),
      env,
    });
    const { stdout } = await run(path.join(work, 'verify-sif'), [trust.ring, signed]);
    expect(stdout).toMatch(
      /signature 5: verified objects \[1 2 3 4\] by 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84 err=<nil>/,
    );
    expect(stdout).toMatch(/^OK$/m);
    // and it refuses a tampered copy
    const bad = path.join(work, 'pgp-bad.sif');
    const bytes = await fs.readFile(signed);
    bytes[0x05] ^= 1;
    await fs.writeFile(bad, bytes);
    await expect(run(path.join(work, 'verify-sif'), [trust.ring, bad])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/header integrity compromised/),
    });
    // and, as sifkit, a copy with an object in no group (sylabs' errNonGroupedObject)
    const ungrouped = path.join(work, 'pgp-ungrouped.sif');
    await fs.copyFile(signed, ungrouped);
    await fs.writeFile(path.join(work, 'loose.txt'), 'outside every group\n');
    execFileSync('siftool', [
      'add',
      ungrouped,
      path.join(work, 'loose.txt'),
      '--datatype',
      '7',
      '--groupid',
      '0',
      '--filename',
      'loose.txt',
    ]);
    await expect(run(path.join(work, 'verify-sif'), [trust.ring, ungrouped])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/non-signature object not associated with object group/),
    });
    const mine = await verifySif(ungrouped, await loadVerifiers({ keyring: trust.ring }));
    expect(verifyFailure(mine)).toMatch(/object 6 "loose\.txt" is in no object group/);
  });

  it('gpg --verify accepts the clear-signed payload', async () => {
    const home = path.join(work, 'gnupg');
    await fs.mkdir(home, { mode: 0o700 });
    const env = { ...process.env, GNUPGHOME: home };
    await run('gpg', ['--batch', '--import', trust.ring], { env });
    const sigObject = execFileSync('siftool', ['dump', '5', signed]);
    await fs.writeFile(path.join(work, 'payload.asc'), sigObject);
    const { stderr } = await run('gpg', ['--batch', '--verify', path.join(work, 'payload.asc')], { env });
    expect(stderr).toMatch(/Good signature from "Unit Test <unit@test.com>"/);
    expect(sigObject.toString()).toMatch(
      /^-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n\{"version":1,"header":\{"digest":"sha256:/,
    );
  });

  it('siftool lists the signature descriptor: no group, linked to group 1, SHA-256', () => {
    const listing = execFileSync('siftool', ['list', signed], { encoding: 'utf8' });
    expect(listing).toMatch(/^5\s+\|NONE\s+\|1\s+\(G\)\s+\|\d+-\d+\s+\|Signature \(SHA-256\)/m);
  });
});

describe('OpenPGP keys the suite had not seen (expired, revoked, newer than the SIF, not in the keyring, garbage)', () => {
  // Keys are made by openpgp.js itself at fixed dates; the SIFs are sylabs' unsigned one with its time set.
  const day = 86_400;
  /** sylabs' unsigned one-group image, its modification time set to `unix` seconds. */
  const sifAt = async (name: string, unix: number): Promise<string> => {
    const f = path.join(work, `pgp-${name}.sif`);
    const b = await fs.readFile(path.join(SYLABS, 'one-group.sif'));
    b.writeBigInt64LE(BigInt(unix), 0x48);
    await fs.writeFile(f, b);
    return f;
  };
  const writeKey = async (name: string, text: string, mode = 0o600): Promise<string> => {
    const p = path.join(work, 'pgp-keys', name);
    await fs.mkdir(path.dirname(p), { recursive: true });
    await fs.writeFile(p, text, { mode });
    await fs.chmod(p, mode);
    return p;
  };
  const makeKey = async (name: string, created: Date, expiresIn = 0) => {
    const k = await openpgp.generateKey({
      type: 'ecc',
      curve: 'ed25519Legacy',
      userIDs: [{ name, email: `${name}@example.org` }],
      date: created,
      keyExpirationTime: expiresIn,
      format: 'object',
    });
    return {
      secret: await writeKey(`${name}.sec.asc`, k.privateKey.armor()),
      public: await writeKey(`${name}.pub.asc`, k.publicKey.armor(), 0o644),
      key: k.privateKey,
    };
  };
  const now = Date.now();

  it('a key that cannot sign now (expired) is exit 2, one line, the SIF untouched; a key newer than the SIF signs it, deterministically', async () => {
    const expired = await makeKey('expired', new Date(now - 10 * day * 1000), 2 * day);
    const f = await sifAt('expired', Math.floor(now / 1000) - 5 * day);
    const before = await fs.readFile(f);
    const r = await runCli(['sign', f, '--key', expired.secret]);
    expect(r.stderr).toMatch(
      /^sifkit: error: .*expired\.sec\.asc.*: the OpenPGP key cannot sign: Primary key is expired\n$/,
    );
    expect(r.code).toBe(2);
    expect((await fs.readFile(f)).equals(before)).toBe(true);

    // The SIF is a year older than the key: signed at the key's own first valid time, the same bytes twice.
    const fresh = await makeKey('fresh', new Date(now - day * 1000));
    const [a, b] = [await sifAt('older-a', 1_700_000_000), await sifAt('older-b', 1_700_000_000)];
    for (const x of [a, b]) expect((await runCli(['sign', x, '--key', fresh.secret])).code).toBe(0);
    expect((await fs.readFile(a)).equals(await fs.readFile(b))).toBe(true);
    const ok = await runCli(['verify-signature', a, '--keyring', fresh.public]);
    expect(ok.stdout).toMatch(/group 1 \(objects 1, 2\): verified/);
    expect(ok.code).toBe(0);
  });

  it('verification: a key expired or revoked since it signed, or not in the keyring, is refused (exit 3) and named', async () => {
    // Signed in 2020 while the key was valid; the key expired two days later.
    const old = await makeKey('old', new Date('2020-01-01T00:00:00Z'), 2 * day);
    const f = await sifAt('old', Date.parse('2020-01-01T12:00:00Z') / 1000);
    const signer = await loadSigningKey(old.secret).catch((e: Error) => e);
    expect(signer).toBeInstanceOf(Error); // refused to sign now...
    const k = await readPgpPrivateKey(old.key.armor());
    // ...so sign as of 2020, when it could.
    await signSif(f, [{ kind: 'pgp', key: k, fingerprint: pgpFingerprint(k), file: old.secret }], {
      now: new Date('2020-01-01T12:00:00Z'),
    });
    const expired = await runCli(['verify-signature', f, '--keyring', old.public]);
    expect(expired.stderr).toMatch(/cannot sign now: Primary key is expired/);
    expect(expired.code).toBe(3);

    const good = await makeKey('revoked', new Date(now - day * 1000));
    const g = await sifAt('revoked', Math.floor(now / 1000));
    expect((await runCli(['sign', g, '--key', good.secret])).code).toBe(0);
    const { publicKey: revoked } = await openpgp.revokeKey({ key: good.key, format: 'armored' });
    const ring = await writeKey('revoked-ring.asc', revoked, 0o644);
    const r = await runCli(['verify-signature', g, '--keyring', ring]);
    expect(r.stderr).toMatch(/: Primary key is revoked\)\n$/);
    expect(r.code).toBe(3);

    const other = await runCli(['verify-signature', g, '--keyring', old.public]);
    expect(other.stderr).toMatch(/no valid signature by a key of the keyring \(signed by key ID [0-9A-F]{16}\)/);
    expect(other.code).toBe(3);
  });

  it('an empty, garbage or keyless keyring is exit 2, one line', async () => {
    const f = path.join(SYLABS, 'one-group-signed-pgp.sif');
    const rings = [
      await writeKey('empty.asc', '', 0o644),
      await writeKey('garbage.asc', 'x'.repeat(300), 0o644),
      await writeKey(
        'keyless.asc',
        '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n',
        0o644,
      ),
    ];
    for (const ring of rings) {
      const r = await runCli(['verify-signature', f, '--keyring', ring]);
      expect(r.stderr).toMatch(/^sifkit: error: "[^"]+": not an armored OpenPGP keyring\n$/);
      expect(r.code).toBe(2);
    }
  });

  it('the hint for a key readable by others is a command that works when pasted, whatever the path holds', async () => {
    const dir = path.join(work, 'odd dir;$(touch pwned)');
    await fs.mkdir(dir, { recursive: true });
    const k = path.join(dir, "k'ey.pem");
    await fs.copyFile(path.join(SYLABS, 'ed25519-private.pem'), k);
    await fs.chmod(k, 0o644);
    const r = await runCli(['sign', path.join(SYLABS, 'one-group.sif'), '--key', k], { cwd: work });
    expect(r.code).toBe(2);
    const hint = /^sifkit: hint: (.*)$/m.exec(r.stderr)?.[1];
    expect(hint).toMatch(/^chmod 600 '/);
    await run('bash', ['-c', hint!], { cwd: work });
    expect((await fs.stat(k)).mode & 0o777).toBe(0o600);
    await expect(fs.stat(path.join(work, 'pwned'))).rejects.toThrow(/ENOENT/);
  });
});
