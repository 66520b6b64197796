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
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { CYCLONEDX_SCHEMA_ID } from '../../src/cli/json-schemas';
import { validateSbom } from '../../src/convert/sbom';
import { runCli } from '../support/cli';
import { makeSif } from '../support/sifs';

const run = promisify(execFile);
const IMAGE = 'debian:bookworm-slim';

jest.setTimeout(900_000);
/**
 * The image is converted three times (here, again for reproducibility, and by verify-conversion, which
 * squashes as the SIF says): lz4 takes a fiftieth of gzip's CPU time, and SBOM, provenance and signature
 * do not depend on the compressor. A release's gzip SIFs are attested, signed and verified in
 * attest-release.test.ts, and verify-conversion reconverts gzip SIFs in convert-exact.test.ts.
 */
const LZ4 = ['--compression', 'lz4'];

let work: string;
let sif: string;
let key: string;
beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h26-sbom-'));
  key = path.join(work, 'build.pem');
  await fs.copyFile(path.join(__dirname, '..', 'fixtures', 'sylabs', 'ed25519-private.pem'), key);
  await fs.chmod(key, 0o600);
  sif = path.join(work, 'debian.sif');
  const r = await runCli(['convert', `docker-daemon:${IMAGE}`, '-o', sif, ...LZ4, '--signing-key', key, '--json']);
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

it("the SBOM descriptor pointed at the provenance's bytes and back (offsets and sizes swapped): both named, exit 3; a second SBOM: inspect refuses it, naming both", async () => {
  const pub = path.join(__dirname, '..', 'fixtures', 'sylabs', 'ed25519-public.pem');
  const swapped = path.join(work, 'swapped.sif');
  const bytes = await fs.readFile(sif);
  // Slots 5 and 6 (objects 5 and 6): offset at +17, size at +25, size with padding at +33.
  const slot = (i: number) => 4096 + (i - 1) * 585;
  for (const field of [17, 25, 33]) {
    const a = bytes.readBigInt64LE(slot(5) + field);
    bytes.writeBigInt64LE(bytes.readBigInt64LE(slot(6) + field), slot(5) + field);
    bytes.writeBigInt64LE(a, slot(6) + field);
  }
  await fs.writeFile(swapped, bytes);
  const v = await runCli(['verify-signature', swapped, '--key', pub]);
  expect(v.code).toBe(3);
  expect(v.stderr.split('\n').filter(Boolean)).toEqual([
    expect.stringMatching(
      /: object group 1 is not verified: signature 7: .*the data of object 5 \(sbom\.cdx\.json\) changed; .*the data of object 6 \(provenance\.json\) changed$/,
    ),
  ]);
  const second = path.join(work, 'second-sbom.sif');
  await fs.copyFile(sif, second);
  await fs.writeFile(path.join(work, 'other.cdx.json'), JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6' }));
  await run('siftool', [
    'add',
    second,
    path.join(work, 'other.cdx.json'),
    '--datatype',
    '9',
    '--sbomformat',
    'cyclonedx-json',
    '--groupid',
    '1',
  ]);
  const i = await runCli(['inspect', second]);
  expect([i.code, i.stderr]).toEqual([
    2,
    expect.stringMatching(
      /^sifkit: error: .*: object 8 \(sbom\) is a second SBOM \(object 5 "sbom\.cdx\.json" is one\)/,
    ),
  ]);
  expect((await runCli(['verify-signature', second, '--key', pub])).code).toBe(3);
});

it('verify-conversion still proves the signed SIF is the conversion of the image', async () => {
  const r = await runCli(['verify-conversion', sif, '--json']);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ identical: true });
});

it('stays reproducible: converting, attesting and signing again gives the same bytes', async () => {
  const again = path.join(work, 'again.sif');
  const r = await runCli(['convert', `docker-daemon:${IMAGE}`, '-o', again, ...LZ4, '--signing-key', key]);
  expect(r.code).toBe(0);
  expect((await fs.readFile(again)).equals(await fs.readFile(sif))).toBe(true);
});

describe("inspect --json against its published JSON Schema (docs/schemas), with CycloneDX's own schema for the SBOM", () => {
  /**
   * Ajv over the published schema. CycloneDX's schema is draft-07, which one
   * Ajv 2020 instance cannot compile beside it: its $id is registered as any
   * object here, and the SBOM document is checked by the CycloneDX library's
   * own strict validator (validateSbom) against that same schema.
   */
  function validator() {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ $id: CYCLONEDX_SCHEMA_ID, type: 'object' });
    const file = path.join(__dirname, '..', '..', 'docs', 'schemas', 'inspect.schema.json');
    return ajv.compile(JSON.parse(readFileSync(file, 'utf8')));
  }

  it('the real output validates, the SBOM as a whole CycloneDX document; a stray provenance field or a non-CycloneDX SBOM does not', async () => {
    const validate = validator();
    const doc = JSON.parse((await runCli(['inspect', sif, '--json'])).stdout);
    expect(doc.sbom.document).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6' });
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
    expect(validate({ ...doc, provenance: { ...doc.provenance, extra: 1 } })).toBe(false);
    expect(validate.errors?.[0]).toMatchObject({ instancePath: '/provenance', keyword: 'additionalProperties' });
    const schema = JSON.parse(
      readFileSync(path.join(__dirname, '..', '..', 'docs', 'schemas', 'inspect.schema.json'), 'utf8'),
    );
    expect(schema.properties.sbom.properties.document.$ref).toBe(CYCLONEDX_SCHEMA_ID);
    await expect(validateSbom(JSON.stringify(doc.sbom.document))).resolves.toBeUndefined();
    await expect(validateSbom(JSON.stringify({ ...doc.sbom.document, components: [{ name: 'x' }] }))).rejects.toThrow();
  });

  it('inspect refuses a provenance.json that is not the strict provenance: one line, exit 2', async () => {
    const f = path.join(work, 'stray-provenance.sif');
    await makeSif(f, { stem: 'lumi-h44-provenance', dockerhash: '0123456789ab', created: '2026-01-02T03:04:05Z' });
    const json = path.join(work, 'provenance.json');
    await fs.writeFile(
      json,
      JSON.stringify({
        _type: 'https://github.com/sifkit/provenance/v1',
        sifkit: { version: '0.1.0' },
        image: {},
        extra: 1,
      }),
    );
    await run('siftool', ['add', f, json, '--datatype', '6', '--groupid', '1', '--filename', 'provenance.json']);
    const r = await runCli(['inspect', f, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error'))).toEqual([
      expect.stringMatching(/object \d+ "?provenance\.json"?.*extra/),
    ]);
  });
});
