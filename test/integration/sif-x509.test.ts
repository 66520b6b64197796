/**
 * X.509 chains judged as a verifier should (RFC 5280): certificates made
 * here by openssl, and for the CA-side rules `openssl verify` over the same
 * files as an independent judge. A SIF signed by a refused certificate's
 * key gets exit 3 and one line from `verify-signature`.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../support/cli';
import { makeSif } from '../support/sifs';
import { loadCertificateKey, loadSigningKey } from '../../src/sif/keys';
import { signSif } from '../../src/sif/signature';

const run = promisify(execFile);
jest.setTimeout(120_000);

let dir: string;
let serial = 1;
const file = (name: string) => path.join(dir, name);

/** A certificate made by openssl: self-signed when `issuer` is absent; `ext` is an openssl extension file. */
async function cert(name: string, ext: string, issuer?: string): Promise<string> {
  await fs.writeFile(file(`${name}.ext`), ext);
  const ossl = (...args: string[]) => run('openssl', args, { cwd: dir });
  await ossl(
    'req',
    '-new',
    '-newkey',
    'ed25519',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  );
  const signer = issuer ? ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`] : ['-signkey', `${name}.key`];
  await ossl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    ...signer,
    '-set_serial',
    String(serial++),
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
  await fs.chmod(file(`${name}.key`), 0o600);
  return file(`${name}.pem`);
}

async function pool(name: string, certs: string[]): Promise<string> {
  const text = (await Promise.all(certs.map((c) => fs.readFile(file(`${c}.pem`), 'utf8')))).join('');
  await fs.writeFile(file(name), text);
  return file(name);
}

/** `openssl verify` of a leaf with the pool as trust store: undefined when it accepts, else its error line. */
async function opensslVerdict(leaf: string, caPool: string): Promise<string | undefined> {
  try {
    await run('openssl', ['verify', '-CAfile', caPool, leaf]);
    return undefined;
  } catch (e) {
    return ((e as { stdout: string; stderr: string }).stdout + (e as { stderr: string }).stderr).trim();
  }
}

const CA = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
const SIGNER = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n';

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h44-x509-'));
  await cert('root', CA);
  await cert('root-pathlen0', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n');
  await cert('root-pathlen1', 'basicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign\n');
  await cert('root-no-certsign', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n');
  await cert('root-no-keyusage', 'basicConstraints=critical,CA:TRUE\n');
  await cert('int-under-pathlen0', CA, 'root-pathlen0');
  await cert(
    'int-under-pathlen1',
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=keyCertSign\n',
    'root-pathlen1',
  );
  await cert('int-no-certsign', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,cRLSign\n', 'root');
  await cert('int-not-ca', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign\n', 'root');
  await cert('int-server-only', `${CA}extendedKeyUsage=serverAuth\n`, 'root');
  await cert('int-unknown-critical', `${CA}1.3.6.1.4.1.99999.1=critical,ASN1:UTF8String:h44\n`, 'root');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Each case: the leaf's issuer and extensions, the pool, what sifkit says, and whether `openssl verify` is a judge of it. */
const cases: Array<{
  name: string;
  issuer: string;
  ext?: string;
  pool: string[];
  refused?: RegExp;
  /** openssl 3.0's verify has no code-signing purpose: leaf usages and extended key usages are ours alone. */
  opensslJudges: boolean;
}> = [
  { name: 'leaf of a root', issuer: 'root', pool: ['root'], opensslJudges: true },
  {
    name: 'leaf under an intermediate within pathLen 1',
    issuer: 'int-under-pathlen1',
    pool: ['root-pathlen1', 'int-under-pathlen1'],
    opensslJudges: true,
  },
  {
    name: 'leaf of a root with no keyUsage',
    issuer: 'root-no-keyusage',
    pool: ['root-no-keyusage'],
    opensslJudges: true,
  },
  {
    name: 'leaf under an intermediate of a pathLen 0 root',
    issuer: 'int-under-pathlen0',
    pool: ['root-pathlen0', 'int-under-pathlen0'],
    refused: /its issuer "CN=root-pathlen0" allows 0 CA certificates below it \(pathLen 0\), and the chain has 1/,
    opensslJudges: true,
  },
  {
    name: 'leaf of a root without keyCertSign',
    issuer: 'root-no-certsign',
    pool: ['root-no-certsign'],
    refused: /its issuer "CN=root-no-certsign" may not sign certificates \(its keyUsage has no keyCertSign\)/,
    opensslJudges: true,
  },
  {
    name: 'leaf under an intermediate without keyCertSign',
    issuer: 'int-no-certsign',
    pool: ['root', 'int-no-certsign'],
    refused: /its issuer "CN=int-no-certsign" may not sign certificates/,
    opensslJudges: true,
  },
  {
    name: 'leaf under an intermediate that is not a CA',
    issuer: 'int-not-ca',
    pool: ['root', 'int-not-ca'],
    refused: /its issuer "CN=int-not-ca" is not a CA/,
    opensslJudges: true,
  },
  {
    name: 'leaf under an intermediate with an unknown critical extension',
    issuer: 'int-unknown-critical',
    pool: ['root', 'int-unknown-critical'],
    refused:
      /its issuer "CN=int-unknown-critical" has a critical extension sifkit does not check \(1\.3\.6\.1\.4\.1\.99999\.1\)/,
    opensslJudges: true,
  },
  {
    name: 'leaf under an intermediate limited to server authentication',
    issuer: 'int-server-only',
    pool: ['root', 'int-server-only'],
    refused: /its issuer "CN=int-server-only" limits its extended key usage to uses other than code signing/,
    opensslJudges: false,
  },
  {
    name: 'leaf whose keyUsage lacks digitalSignature',
    issuer: 'root',
    ext: 'keyUsage=critical,keyEncipherment\nextendedKeyUsage=codeSigning\n',
    pool: ['root'],
    refused: /its keyUsage does not include digitalSignature/,
    opensslJudges: false,
  },
  {
    name: 'leaf for TLS servers only',
    issuer: 'root',
    ext: 'keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
    pool: ['root'],
    refused: /its extended key usage does not include code signing/,
    opensslJudges: false,
  },
  {
    name: 'leaf with anyExtendedKeyUsage',
    issuer: 'root',
    ext: 'keyUsage=digitalSignature\nextendedKeyUsage=anyExtendedKeyUsage\n',
    pool: ['root'],
    opensslJudges: false,
  },
  {
    name: 'leaf with an unknown critical extension',
    issuer: 'root',
    ext: `${SIGNER}1.3.6.1.4.1.99999.2=critical,ASN1:NULL\n`,
    pool: ['root'],
    refused: /it has a critical extension sifkit does not check \(1\.3\.6\.1\.4\.1\.99999\.2\)/,
    opensslJudges: true,
  },
];

describe('X.509 chains', () => {
  it.each(cases.map((c, i) => [c.name, i] as const))('%s', async (_name, i) => {
    const c = cases[i];
    const leaf = await cert(`leaf-${i}`, c.ext ?? SIGNER, c.issuer);
    const caPool = await pool(`pool-${i}.pem`, c.pool);
    const p = loadCertificateKey(leaf, caPool);
    if (c.refused) await expect(p).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(c.refused) });
    else await expect(p).resolves.toMatchObject({ subject: `CN=leaf-${i}` });
    if (c.opensslJudges) {
      const verdict = await opensslVerdict(leaf, caPool);
      if (c.refused) expect(verdict).toMatch(/error \d+ at \d+ depth lookup/);
      else expect(verdict).toBeUndefined();
    }
  });

  it('verify-signature refuses a SIF signed by a certificate under a pathLen 0 root: exit 3, one line', async () => {
    const leaf = await cert('leaf-cli', SIGNER, 'int-under-pathlen0');
    const caPool = await pool('pool-cli.pem', ['root-pathlen0', 'int-under-pathlen0']);
    const sif = file('x509.sif');
    await makeSif(sif, { stem: 'lumi-h44-x509', dockerhash: '0123456789ab', created: '2026-01-02T03:04:05Z' });
    await signSif(sif, [await loadSigningKey(file('leaf-cli.key'))]);
    const before = await fs.readFile(sif);
    const r = await runCli(['verify-signature', sif, '--cert', leaf, '--ca-pool', caPool]);
    expect(r.code).toBe(3);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/allows 0 CA certificates below it \(pathLen 0\), and the chain has 1/);
    expect((await fs.readFile(sif)).equals(before)).toBe(true);
    // Trusting the intermediate alone does not get round it: a chain must end at a self-signed root of the pool.
    const partial = await runCli([
      'verify-signature',
      sif,
      '--cert',
      leaf,
      '--ca-pool',
      await pool('pool-cli-int-only.pem', ['int-under-pathlen0']),
    ]);
    expect(partial.code).toBe(3);
    expect(partial.stderr).toMatch(/not issued by a CA of/);
  });
});
