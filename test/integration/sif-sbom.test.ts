/**
 * The SBOM lists what is really in the image: debian:bookworm-slim (made
 * locally by debootstrap, test/setup) converted through the real engine with
 * a signing key; its SBOM's packages are exactly what `dpkg-query` inside
 * the image lists; the signature covers SBOM and provenance; and
 * verify-conversion still proves the conversion of the signed SIF.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../support/cli';

const run = promisify(execFile);
const IMAGE = 'debian:bookworm-slim';

jest.setTimeout(900_000);

let work: string;
let sif: string;
let key: string;
beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h26-sbom-'));
  key = path.join(work, 'build.pem');
  await fs.copyFile(path.join(__dirname, '..', 'fixtures', 'sylabs', 'ed25519-private.pem'), key);
  await fs.chmod(key, 0o600);
  sif = path.join(work, 'debian.sif');
  const r = await runCli(['convert', `docker-daemon:${IMAGE}`, '-o', sif, '--signing-key', key, '--json']);
  expect(r.stderr).toBe(r.code === 0 ? r.stderr : '');
  expect(r.code).toBe(0);
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

it("lists exactly the image's installed Debian packages, with their versions and architectures", async () => {
  const { stdout } = await run('docker', [
    'run',
    '--rm',
    '--network',
    'none',
    IMAGE,
    'dpkg-query',
    '-W',
    '-f',
    '${db:Status-Status} ${Package} ${Version} ${Architecture}\\n',
  ]);
  const inImage = stdout
    .split('\n')
    .filter((l) => l.startsWith('installed '))
    .map((l) => l.slice('installed '.length))
    .sort();
  expect(inImage.length).toBeGreaterThan(50);
  const doc = JSON.parse((await runCli(['inspect', sif, '--json'])).stdout);
  const listed = doc.sbom.components
    .map(
      (c: { name: string; version: string; purl: string }) =>
        `${c.name} ${c.version} ${/arch=([^&]+)/.exec(c.purl)![1]}`,
    )
    .sort();
  expect(listed).toEqual(inImage);
  expect(doc.sbom.format).toBe('CycloneDX JSON');
  expect(doc.provenance).toMatchObject({
    source: `docker-daemon:${IMAGE}`,
    image: { id: expect.stringMatching(/^sha256:/) },
  });
});

it('puts SBOM and provenance in group 1 under the signature; siftool shows the SBOM type', async () => {
  const { stdout } = await run('siftool', ['list', sif]);
  expect(stdout).toMatch(/^5\s+\|1\s+\|NONE\s+\|\S+\s+\|SBOM \(cyclonedx-json\)/m);
  expect(stdout).toMatch(/^6\s+\|1\s+\|NONE\s+\|\S+\s+\|JSON\.Generic/m);
  expect(stdout).toMatch(/^7\s+\|NONE\s+\|1\s+\(G\)\s+\|\S+\s+\|Signature \(SHA-256\)/m);
  const v = await runCli([
    'verify-signature',
    sif,
    '--key',
    path.join(__dirname, '..', 'fixtures', 'sylabs', 'ed25519-public.pem'),
    '--json',
  ]);
  expect(v.code).toBe(0);
  expect(JSON.parse(v.stdout).groups[0]).toMatchObject({ objects: [1, 2, 3, 4, 5, 6], verified: true });
});

it('a one-byte change in the SBOM is caught and named', async () => {
  const bad = path.join(work, 'bad.sif');
  const bytes = await fs.readFile(sif);
  const at = bytes.indexOf(Buffer.from('"pkg:deb/debian/'), 32176);
  bytes[at + 1] ^= 0x01;
  await fs.writeFile(bad, bytes);
  const v = await runCli([
    'verify-signature',
    bad,
    '--key',
    path.join(__dirname, '..', 'fixtures', 'sylabs', 'ed25519-public.pem'),
  ]);
  expect(v.code).toBe(3);
  expect(v.stderr).toMatch(/the data of object 5 \(sbom\.cdx\.json\) changed/);
});

it('verify-conversion still proves the signed SIF is the conversion of the image', async () => {
  const r = await runCli(['verify-conversion', sif, '--json']);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ identical: true });
});

it('stays reproducible: converting, attesting and signing again gives the same bytes', async () => {
  const again = path.join(work, 'again.sif');
  const r = await runCli(['convert', `docker-daemon:${IMAGE}`, '-o', again, '--signing-key', key]);
  expect(r.code).toBe(0);
  expect((await fs.readFile(again)).equals(await fs.readFile(sif))).toBe(true);
});
