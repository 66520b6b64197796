/**
 * The tree enforces its trust policy through the real CLI: stage and
 * promote refuse an unsigned or tampered SIF with one line and exit 3,
 * changing nothing; promote writes the tested signature; verify --deep
 * checks every signature; a tree without a policy works as before and
 * status says so.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runCli, type CliResult } from '../support/cli';
import { makeSif } from '../support/sifs';

const run = promisify(execFile);
const SYLABS = path.join(__dirname, '..', 'fixtures', 'sylabs');
jest.setTimeout(180_000);

let work: string;
let root: string;
let buildKey: string;
let testedKey: string;

/** Every path under `dir` with its size and mode: what a refused command may not change. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = await fs.lstat(p);
      out.push(`${path.relative(dir, p)} ${st.size} ${st.mode.toString(8)} ${st.mtimeMs}`);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

function refusedOneLine(r: CliResult, re: RegExp): void {
  expect(r.code).toBe(3);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error:'));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(re);
}

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h26-trust-'));
  root = path.join(work, 'tree');
  await fs.mkdir(path.join(root, '.sifkit', 'keys'), { recursive: true });
  // A tree as sifkit makes it: its directories are there before anything is staged.
  for (const d of ['tested-containers', 'sif-images', 'easybuild-sif-images', '.sifkit/ledger'])
    await fs.mkdir(path.join(root, d), { recursive: true });
  buildKey = path.join(work, 'build.pem');
  testedKey = path.join(work, 'tested.pem');
  await fs.copyFile(path.join(SYLABS, 'ed25519-private.pem'), buildKey);
  await fs.copyFile(path.join(SYLABS, 'ecdsa-private.pem'), testedKey);
  await fs.chmod(buildKey, 0o600);
  await fs.chmod(testedKey, 0o600);
  await fs.copyFile(path.join(SYLABS, 'ed25519-public.pem'), path.join(root, '.sifkit', 'keys', 'build.pub.pem'));
  await fs.copyFile(path.join(SYLABS, 'ecdsa-public.pem'), path.join(root, '.sifkit', 'keys', 'tested.pub.pem'));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

it('a tree without a policy stages an unsigned SIF as before, and status says nothing is enforced', async () => {
  const plain = path.join(work, 'plain-root');
  await fs.mkdir(plain);
  const sif = path.join(work, 'lumi-h26-plain-dockerhash-aaaaaaaaaaaa.sif');
  await makeSif(sif, { stem: 'lumi-h26-plain', dockerhash: 'aaaaaaaaaaaa', created: '2026-01-01T00:00:00Z' });
  expect((await runCli(['stage', sif, '--root', plain, '--untested'])).code).toBe(0);
  const s = await runCli(['status', '--root', plain]);
  expect(s.stderr).toMatch(/^sifkit: note: no trust policy in this tree: signatures are not enforced/m);
  expect(s.stdout).not.toMatch(/trust policy/);
  expect(JSON.parse((await runCli(['status', '--root', plain, '--json'])).stdout).trustPolicy).toBeUndefined();
});

describe('with a trust policy', () => {
  const NAME = 'lumi-h26-trust-dockerhash-bbbbbbbbbbbb.sif';
  let signed: string;
  beforeAll(async () => {
    await fs.writeFile(
      path.join(root, '.sifkit', 'trust-policy.yaml'),
      'version: 1\nbuild:\n  keys: [keys/build.pub.pem]\ntested:\n  keys: [keys/tested.pub.pem]\n',
    );
    signed = path.join(work, NAME);
    await makeSif(signed, { stem: 'lumi-h26-trust', dockerhash: 'bbbbbbbbbbbb', created: '2026-01-01T00:00:00Z' });
  });

  it('stage refuses an unsigned SIF: exit 3, one line, nothing changed', async () => {
    const unsigned = path.join(work, 'unsigned', NAME);
    await fs.mkdir(path.dirname(unsigned));
    await fs.copyFile(signed, unsigned);
    const before = await listing(root);
    refusedOneLine(
      await runCli(['stage', unsigned, '--root', root, '--untested']),
      /is not signed; the tree's trust policy requires a build signature/,
    );
    expect(await listing(root)).toEqual(before);
  });

  it('stage refuses a SIF signed by a key the policy does not name', async () => {
    const other = path.join(work, 'other', NAME);
    await fs.mkdir(path.dirname(other));
    await fs.copyFile(signed, other);
    const rsa = path.join(work, 'rsa.pem');
    await fs.copyFile(path.join(SYLABS, 'rsa-private.pem'), rsa);
    await fs.chmod(rsa, 0o600);
    expect((await runCli(['sign', other, '--key', rsa])).code).toBe(0);
    const before = await listing(root);
    refusedOneLine(await runCli(['stage', other, '--root', root, '--untested']), /not signed by a given key/);
    expect(await listing(root)).toEqual(before);
  });

  it('stage takes the signed SIF; promote refuses without the tested key, then signs the tested step; verify --deep is clean', async () => {
    expect((await runCli(['sign', signed, '--key', buildKey])).code).toBe(0);
    const st = await runCli(['stage', signed, '--root', root, '--untested']);
    expect(st.stderr).toBe(st.code === 0 ? st.stderr : '');
    expect(st.code).toBe(0);
    const before = await listing(root);
    refusedOneLine(
      await runCli(['promote', NAME, '--to', 'all', '--root', root]),
      /no tested signature; the tree's trust policy requires one/,
    );
    expect(await listing(root)).toEqual(before);
    // A key the policy does not name for the tested step is refused too.
    refusedOneLine(
      await runCli(['promote', NAME, '--to', 'all', '--root', root, '--tested-key', buildKey]),
      /is not a tested key of the trust policy/,
    );
    expect(await listing(root)).toEqual(before);
    const p = await runCli(['promote', NAME, '--to', 'all', '--root', root, '--tested-key', testedKey, '--json']);
    expect(p.code).toBe(0);
    expect(JSON.parse(p.stdout).promoted.testedSignature).toMatch(
      /\.sifkit\/signatures\/lumi-h26-trust-dockerhash-bbbbbbbbbbbb\.sif\.tested\.json$/,
    );
    const v = await runCli(['verify', '--deep', '--root', root, '--json']);
    expect(JSON.parse(v.stdout).problems).toEqual([]);
    expect((await runCli(['status', '--root', root])).stdout).toMatch(/^trust policy: .*trust-policy\.yaml$/m);
  });

  it('stage refuses what was added or cut after signing: exit 3, one line naming it, nothing changed, before any label is read', async () => {
    const variant = async (name: string, edit: (f: string) => Promise<void>): Promise<string> => {
      const f = path.join(work, `after-${name}`, NAME);
      await fs.mkdir(path.dirname(f));
      await fs.copyFile(signed, f);
      await edit(f);
      return f;
    };
    const bytes = (edit: (b: Buffer) => void) => async (f: string) => {
      const b = await fs.readFile(f);
      edit(b);
      await fs.writeFile(f, b);
    };
    const doc = path.join(work, 'added.json');
    // Labels that would rename the image, and an SBOM that lists something else: the signer said neither.
    await fs.writeFile(doc, JSON.stringify({ 'io.sifkit.stem': 'lumi-h26-other' }));
    const siftoolAdd = (type: string, group: string) => async (f: string) => {
      const sbom = type === '9' ? ['--sbomformat', 'cyclonedx-json'] : [];
      await run('siftool', [
        'add',
        f,
        doc,
        '--datatype',
        type,
        ...sbom,
        '--groupid',
        group,
        '--filename',
        'added.json',
      ]);
    };
    const cases: Array<[string, (f: string) => Promise<void>, RegExp]> = [
      ['labels-group2', siftoolAdd('3', '2'), /object group 2 is not verified: group: no signature/],
      ['sbom-group2', siftoolAdd('9', '2'), /object group 2 is not verified: group: no signature/],
      [
        'sbom-group1',
        siftoolAdd('9', '1'),
        /object group 1 is not verified: .*"?added\.json"?\)? is in the group but not signed/,
      ],
      [
        'cut',
        async (f) => fs.truncate(f, (await fs.stat(f)).size - 1),
        /not a valid SIF: object \d+ \(signature\) lies outside the file/,
      ],
      [
        'count',
        // Total, table size and free count raised together, as a consistent edit would: the table now runs into the data.
        bytes((b) => {
          b.writeBigInt64LE(b.readBigInt64LE(0x58) + 1n, 0x58);
          b.writeBigInt64LE(b.readBigInt64LE(0x68) + 585n, 0x68);
          b.writeBigInt64LE(b.readBigInt64LE(0x50) + 1n, 0x50);
        }),
        /not a valid SIF: the data section starts inside the descriptor table/,
      ],
      [
        'same-id',
        bytes((b) => b.writeUInt32LE(1, 4096 + 585 + 5)),
        /not a valid SIF: object 1 .*its ID is taken twice/,
      ],
    ];
    const before = await listing(root);
    for (const [name, edit, re] of cases) {
      const r = await runCli(['stage', await variant(name, edit), '--root', root, '--untested']);
      expect([name, r.stderr]).toEqual([name, expect.stringMatching(re)]);
      refusedOneLine(r, re);
    }
    expect(await listing(root)).toEqual(before);
  });

  it('a tampered staged image: verify --deep names it, promote refuses it (exit 3) and changes nothing', async () => {
    const staged = path.join(root, 'tested-containers', NAME);
    const bytes = await fs.readFile(staged);
    const at = bytes.length - 3000; // in the squashfs partition, before the signature
    bytes[at] ^= 0x01;
    // Written in place: the same inode the easybuild hard link shares, as a tamperer would.
    const fh = await fs.open(staged, 'r+');
    await fh.write(bytes, at, 1, at);
    await fh.close();
    const v = await runCli(['verify', '--deep', '--root', root, '--json']);
    const problems = JSON.parse(v.stdout).problems as Array<{ kind: string; path: string; message: string }>;
    expect(problems.filter((p) => p.kind === 'signature').map((p) => p.message)).toEqual([
      expect.stringMatching(/the data of object 4 changed/),
    ]);
    const before = await listing(root);
    refusedOneLine(
      await runCli(['promote', NAME, '--to', 'sif-images', '--root', root, '--tested-key', testedKey]),
      /tested-containers\/lumi-h26-trust-dockerhash-bbbbbbbbbbbb\.sif: object group 1 is not verified: .*the data of object 4 changed/,
    );
    expect(await listing(root)).toEqual(before);
  });
});
