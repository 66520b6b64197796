/**
 * `easyconfig|module --key` for a SIF outside any tree: the signature is
 * checked before anything is written (exit 3, one line, nothing written),
 * and the EasyConfig names the key that signed. Real CLI, real SIFs signed
 * with sylabs' test keys.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { makeSif } from '../support/sifs';
import { loadSigningKey } from '../../src/sif/keys';
import { signSif } from '../../src/sif/signature';

jest.setTimeout(120_000);

const SYLABS = path.join(__dirname, '..', 'fixtures', 'sylabs');
const ED_PUB = path.join(SYLABS, 'ed25519-public.pem');
const RSA_PUB = path.join(SYLABS, 'rsa-public.pem');
const ED_FINGERPRINT = 'SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs';
const DATE = '20241007';

let dir: string;
let signed: string;
let unsigned: string;
const noTree = () => path.join(dir, 'no-tree');
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('sifkit: error'));
/** Every file under `d`, or none when it does not exist. */
const filesUnder = async (d: string): Promise<string[]> =>
  (await fs.readdir(d, { recursive: true }).catch(() => [] as string[])).map(String);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h44-eckey-'));
  const r = await runCli(['render', 'mpi4py-cpu', '--json']);
  expect(r.code).toBe(0);
  const rendered = JSON.parse(r.stdout);
  unsigned = path.join(dir, 'unsigned.sif');
  await makeSif(unsigned, {
    stem: rendered.names.stem,
    dockerhash: '444444444444',
    recipe: 'mpi4py-cpu',
    params: rendered.parameters,
    env: ['WITH_CONDA=. /opt/mpi4py-env/activate', 'PATH=/usr/bin'],
    labels: { 'io.sifkit.definition-hash': rendered.definitionHash },
    created: '2026-01-02T03:04:05Z',
  });
  signed = path.join(dir, 'signed.sif');
  await fs.copyFile(unsigned, signed);
  const key = path.join(dir, 'ed25519-private.pem');
  await fs.copyFile(path.join(SYLABS, 'ed25519-private.pem'), key);
  await fs.chmod(key, 0o600);
  await signSif(signed, [await loadSigningKey(key)]);
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

const easyconfig = (sif: string, out: string, ...more: string[]) =>
  runCli(['easyconfig', sif, '--out', out, '--root', noTree(), '--date', DATE, ...more]);

it('writes the EasyConfig naming the signing key when the key given signed the SIF', async () => {
  const out = path.join(dir, 'ok');
  const r = await easyconfig(signed, out, '--key', ED_PUB, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const files: string[] = JSON.parse(r.stdout).files;
  const eb = files.find((f) => f.endsWith('.eb'))!;
  expect(await fs.readFile(path.join(out, eb), 'utf8')).toContain(ED_FINGERPRINT);
  // Without --key, outside a tree, nothing is checked and no key is named (as before).
  const plain = path.join(dir, 'plain');
  expect((await easyconfig(signed, plain)).code).toBe(0);
  expect(await fs.readFile(path.join(plain, eb), 'utf8')).not.toContain(ED_FINGERPRINT);
});

it.each([
  [
    'a key that did not sign it',
    () => signed,
    [RSA_PUB],
    /object group 1 is not verified: .*not signed by a given key/,
  ],
  [
    'an unsigned SIF',
    () => unsigned,
    [ED_PUB],
    /is not signed; a signature by a key given \(--key, --cert or --keyring\) is required/,
  ],
])('refuses %s: exit 3, one line, nothing written (easyconfig and module)', async (_what, sif, keys, expected) => {
  const args = keys.flatMap((k) => ['--key', k]);
  const out = path.join(dir, `refused-${path.basename(sif())}-${path.basename(keys[0])}`);
  const r = await easyconfig(sif(), out, ...args);
  expect(r.code).toBe(3);
  expect(errorLines(r.stderr)).toHaveLength(1);
  expect(errorLines(r.stderr)[0]).toMatch(expected);
  expect(await filesUnder(out)).toEqual([]);
  const m = await runCli(['module', sif(), '--out', out, '--root', noTree(), '--date', DATE, ...args]);
  expect(m.code).toBe(3);
  expect(errorLines(m.stderr)[0]).toMatch(expected);
  expect(await filesUnder(out)).toEqual([]);
});

it('refuses a copy with one flipped byte in its partition, naming the object', async () => {
  const bad = path.join(dir, 'flipped.sif');
  const bytes = await fs.readFile(signed);
  bytes[bytes.length - 5000] ^= 0x01;
  await fs.writeFile(bad, bytes);
  const out = path.join(dir, 'flipped-out');
  const r = await easyconfig(bad, out, '--key', ED_PUB);
  expect(r.code).toBe(3);
  expect(errorLines(r.stderr)[0]).toMatch(/the data of object \d+ .*changed/);
  expect(await filesUnder(out)).toEqual([]);
});

it('bad key flags are one line, exit 2, before anything is read', async () => {
  const out = path.join(dir, 'flags-out');
  const r = await easyconfig(signed, out, '--ca-pool', ED_PUB);
  expect(r.code).toBe(2);
  expect(errorLines(r.stderr)).toEqual([
    'sifkit: error: --cert and --ca-pool go together: a certificate is trusted only through a CA pool',
  ]);
  const missing = await easyconfig(signed, out, '--key', path.join(dir, 'no-such.pem'));
  expect(missing.code).toBe(2);
  expect(await filesUnder(out)).toEqual([]);
});
