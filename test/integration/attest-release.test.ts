/**
 * Issue 26's provenance and signing, end to end through the real CLI, the
 * real engine, real squashfs-tools and the real Slurm here:
 * - a release (build, convert, sign) writes a provenance document that
 *   its strict schema accepts, naming every served file with its role and
 *   digest (the digest over them is the scan verdict's), the declared
 *   source with its pin, the engine and the base image, as the build
 *   record holds them (not asked again by attest); the signature verifies;
 * - `release --on slurm` signs too, in the controller after the jobs: the
 *   key (given as $SIFKIT_SIGNING_KEY, which sbatch exports) is in no job
 *   script, log or job file, and the SIF's provenance is the controller's;
 *   a tree with a trust policy stages and promotes it;
 * - the EasyConfig and USER.md written from that tree name the key's
 *   fingerprint, and the command USER.md gives a user verifies the file.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readVerdict } from '../../src/engine/verdict';
import { provenanceDocSchema, type ProvenanceDoc } from '../../src/validate/schemas/provenance';
import { runCli } from '../support/cli';
import { docker, removeTestImages, runId, TEST_TESTING, writeTestRecipe } from '../support/engine';

jest.setTimeout(1_800_000);

const SYLABS = path.join(__dirname, '..', 'fixtures', 'sylabs');
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'sifkit-h39-state-'));
process.env.SIFKIT_STATE_DIR = stateDir;

const TOOL = '/usr/local/bin/attest-tool';
const BASE = 'debian:bookworm-slim';
let work: string;
let recipe: string;
let key: string;
let keyText: string;
const digests: Record<string, string> = {};

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * debian:bookworm-slim (a local base image, scripts/setup.sh) has perl-base
 * but no curl nor python: a stand-in in the build context runs the fetches
 * sifkit renders (`curl -fsS -o DEST URL`), failing as curl -f does on an
 * HTTP error. The slim base keeps the image small, so the two conversions
 * here cost seconds; what is checked (provenance, signature, jobs) does not
 * depend on the image's size.
 */
const CURL = `#!/usr/bin/perl
# Stand-in for curl in debian:bookworm-slim: only \`curl -fsS -o DEST URL\` over plain HTTP.
use strict;
use IO::Socket::INET;
my @args = @ARGV;
my ($dest) = map { $args[$_ + 1] } grep { $args[$_] eq '-o' } 0 .. $#args;
my ($host, $port, $path) = $args[-1] =~ m{^http://([^/:]+):(\\d+)(/.*)$} or die "curl: bad URL $args[-1]\\n";
my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port) or die "curl: $host:$port: $!\\n";
binmode $s;
print $s "GET $path HTTP/1.0\\r\\nHost: $host:$port\\r\\n\\r\\n";
my $answer = do { local $/; <$s> };
my ($head, $body) = split /\\r\\n\\r\\n/, $answer, 2;
if ($head !~ m{^HTTP/\\S+ 200 }) { print STDERR "curl: (22) ", (split /\\r\\n/, $head)[0], "\\n"; exit 22 }
open my $f, '>', $dest or die "curl: $dest: $!\\n";
binmode $f;
print $f $body;
close $f or die "curl: $dest: $!\\n";
`;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h39-attest-'));
  recipe = path.join(work, 'defs', 'attest');
  for (const d of ['served', 'sources', 'context']) await fs.mkdir(path.join(recipe, d), { recursive: true });
  const served: Record<string, string> = {
    'cpe.tar': `licensed stand-in ${runId}\n`,
    'attest-tool': `#!/bin/sh\necho "attest tool ${runId}"\n`,
    // Declared nowhere: licensed, as the scan judges it.
    'undeclared.txt': `undeclared ${runId}\n`,
  };
  for (const [f, text] of Object.entries(served)) {
    await fs.writeFile(path.join(recipe, 'served', f), text);
    digests[f] = sha256(text);
  }
  const src = path.join(work, 'src', 'demo-1.0');
  await fs.mkdir(src, { recursive: true });
  await fs.writeFile(path.join(src, 'hello.txt'), `demo source ${runId}\n`);
  const tarball = path.join(recipe, 'sources', 'demo-1.0.tar.gz');
  execFileSync('tar', ['-C', path.dirname(src), '-czf', tarball, 'demo-1.0']);
  digests.demo = sha256(await fs.readFile(tarball));
  await fs.writeFile(path.join(recipe, 'context', 'curl'), CURL, { mode: 0o755 });
  await fs.writeFile(path.join(recipe, 'USER.md'), '# attest {{ version }}\n\nThe module is {{ module }}.\n');
  await writeTestRecipe(path.join(work, 'defs'), 'attest', {
    base: BASE,
    steps: [
      'COPY curl /usr/local/bin/',
      'ARG SERVER_PORT',
      'ARG SERVED_DIGEST',
      `RUN curl -fsS -o /tmp/cpe.tar "http://127.0.0.1:\${SERVER_PORT}/cpe.tar" ; test -s /tmp/cpe.tar ; rm /tmp/cpe.tar`,
      `RUN curl -fsS -o ${TOOL} "http://127.0.0.1:\${SERVER_PORT}/attest-tool" ; chmod 0755 ${TOOL}`,
      'RUN set -e ; {{ source "demo" "/tmp/demo.tar.gz" }} ; mkdir -p /opt/demo ; tar -xzf /tmp/demo.tar.gz -C /opt/demo ; rm /tmp/demo.tar.gz',
      'RUN echo "attest {{ v }}" > /etc/attest-version',
      'ENV WITH_CONDA="true"',
    ],
    rest: `context: context
server_files: served
runtime_args: [SERVER_PORT, SERVED_DIGEST]
served:
  - { file: cpe.tar, role: licensed }
  - { file: attest-tool, role: tool, path: ${TOOL} }
sources:
  demo:
    path: sources/demo-1.0.tar.gz
    sha256: ${digests.demo}
checks:
  - { name: version, command: 'cat /etc/attest-version', expect: 'attest' }
  - { name: tool, command: '${TOOL}', expect: 'attest tool' }
${TEST_TESTING}`,
  });
  key = path.join(work, 'keys', 'build.pem');
  await fs.mkdir(path.dirname(key));
  await fs.copyFile(path.join(SYLABS, 'ed25519-private.pem'), key);
  await fs.chmod(key, 0o600);
  keyText = await fs.readFile(key, 'utf8');
});
afterAll(async () => {
  await removeTestImages();
  await fs.rm(work, { recursive: true, force: true });
  await fs.rm(stateDir, { recursive: true, force: true });
});

const common = ['--source-cache', 'cache', '--log-dir', 'logs', '--json'];

async function provenanceOf(sif: string): Promise<ProvenanceDoc> {
  const r = await runCli(['inspect', sif, '--json']);
  expect(r.code).toBe(0);
  // Strict: a field the schema does not know, or a value outside its rule, fails here.
  return provenanceDocSchema.parse(JSON.parse(r.stdout).provenance);
}

/** What the provenance of this recipe's image must say, whoever converted it. */
async function expectFullProvenance(p: ProvenanceDoc, imageId: string): Promise<void> {
  expect(p.image.id).toBe(imageId);
  expect(p.served!.files).toEqual([
    { file: 'attest-tool', role: 'tool', path: TOOL, sha256: digests['attest-tool'] },
    { file: 'cpe.tar', role: 'licensed', sha256: digests['cpe.tar'] },
    { file: 'undeclared.txt', role: 'licensed', sha256: digests['undeclared.txt'] },
  ]);
  // The digest the build served under and the scan verdict records for this image.
  const verdict = await readVerdict(path.join(stateDir, 'scan-verdicts'), imageId);
  expect(verdict?.passed).toBe(true);
  expect(p.served!.digest).toBe(verdict!.servedDigest);
  expect(p.sources).toEqual([{ name: 'demo', kind: 'local', url: 'sources/demo-1.0.tar.gz', sha256: digests.demo }]);
  const v = await docker.version();
  const info = await docker.getImage(imageId).inspect();
  expect(p.engine).toEqual({
    name: 'docker',
    version: v.Version,
    apiVersion: v.ApiVersion,
    ...(info.DockerVersion ? { imageBuiltWith: info.DockerVersion } : {}),
  });
  expect(p.definitionHash).toMatch(/^[0-9a-f]{64}$/);
  const base = await docker.getImage(BASE).inspect();
  expect(p.baseImages).toEqual([{ ref: BASE, imageId: base.Id }]);
}

/** The build's facts travel to attest as its record holds them: the provenance says what the build record says. */
function expectFactsOfBuild(p: ProvenanceDoc, build: { engine: object; baseImages: object[] }): void {
  expect(p.engine).toEqual({ name: 'docker', ...build.engine });
  expect(p.baseImages).toEqual(build.baseImages);
}

describe('a release signs, and its provenance names the served files, the sources and the engine', () => {
  let pub: string;
  beforeAll(async () => {
    pub = path.join(work, 'keys', 'build.pub.pem');
    await fs.copyFile(path.join(SYLABS, 'ed25519-public.pem'), pub);
  });

  it('locally: build, convert, attest, sign; the document round-trips through its schema; the signature verifies', async () => {
    const r = await runCli(
      ['release', recipe, '--root', 'tree-l', '--init', '--out', 'sif-l', '--results-dir', 'res-l', ...common],
      { cwd: work, env: { SIFKIT_SIGNING_KEY: key } },
    );
    expect(r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error'))).toEqual([]);
    expect(r.code).toBe(0);
    const v = JSON.parse(r.stdout).variants[0];
    const p = await provenanceOf(v.sif);
    await expectFullProvenance(p, v.results.build.imageId);
    expectFactsOfBuild(p, v.results.build);
    expect(p.source).toBe(`docker-daemon:${v.results.build.imageId}`);
    const verified = await runCli(['verify-signature', v.sif, '--key', pub, '--json']);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout).groups[0]).toMatchObject({ group: 1, verified: true });
  });

  it('on Slurm: the controller signs after the jobs; the key reaches no job; a tree with a policy takes the SIF; its EasyConfig and USER.md name the key, and the command USER.md gives verifies', async () => {
    const tree = path.join(work, 'tree-s');
    expect((await runCli(['init', tree], { cwd: work })).code).toBe(0);
    await fs.mkdir(path.join(tree, '.sifkit', 'keys'), { recursive: true });
    await fs.copyFile(pub, path.join(tree, '.sifkit', 'keys', 'build.pub.pem'));
    await fs.writeFile(
      path.join(tree, '.sifkit', 'trust-policy.yaml'),
      'version: 1\nbuild:\n  keys: [keys/build.pub.pem]\n',
    );
    const r = await runCli(
      [
        'release',
        recipe,
        '--on',
        'slurm',
        '--poll',
        '1',
        '--root',
        tree,
        '--out',
        'sif-s',
        '--results-dir',
        'res-s',
        ...common,
      ],
      // As the signing docs used to advise for Slurm: the key in the environment, which sbatch exports.
      { cwd: work, env: { SIFKIT_SIGNING_KEY: key } },
    );
    expect(r.stderr.split('\n').filter((l) => l.startsWith('sifkit: error'))).toEqual([]);
    expect(r.code).toBe(0);
    const v = JSON.parse(r.stdout).variants[0];
    expect(v.stages).toMatchObject({ slurm: 'done', stage: 'done', promote: 'done' });
    expect(v.results.slurm.convert.state).toBe('COMPLETED');

    // The controller attested: a job's `sifkit convert` would have written a provenance of labels only.
    const p = await provenanceOf(v.sif);
    await expectFullProvenance(p, v.results.build.imageId);
    expectFactsOfBuild(p, v.results.build);
    expect(p.source).toMatch(/^docker-archive:.*\.tar$/);
    const verified = await runCli(['verify-signature', v.sif, '--key', pub, '--json']);
    expect(verified.code).toBe(0);
    const fingerprint: string = JSON.parse(verified.stdout).groups[0].signatures[0].signers[0];
    expect(fingerprint).toMatch(/^SHA256:/);

    // Every file the jobs were given or wrote: no key, no key path.
    const jobsDir = path.join(work, 'sif-s', '.sifkit-slurm');
    const files: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await fs.readdir(d, { withFileTypes: true }))
        if (e.isDirectory()) await walk(path.join(d, e.name));
        else if (e.isFile()) files.push(path.join(d, e.name));
    };
    await walk(jobsDir);
    expect(files.some((f) => /convert-(.+-)?\d+\.sh$/.test(f))).toBe(true);
    expect(files.some((f) => /convert-(.+-)?\d+-0\.out$/.test(f))).toBe(true);
    const body = keyText.split('\n')[1];
    for (const f of files) {
      const text = await fs.readFile(f, 'utf8');
      expect([f, text.includes(body), text.includes(key)]).toEqual([f, false, false]);
    }
    const script = await fs.readFile(
      files.find((f) => /convert-(.+-)?\d+\.sh$/.test(f))!,
      'utf8',
    );
    expect(script).toContain('unset SIFKIT_SIGNING_KEY SIFKIT_TESTED_KEY');

    // What users read names the key, and the command it gives checks the file.
    const name = path.basename(v.sif);
    const defs = { SIFKIT_DEFS: path.join(work, 'defs') };
    const ec = await runCli(['easyconfig', name, '--root', tree, '--out', path.join(work, 'ec'), '--json'], {
      cwd: work,
      env: defs,
    });
    expect(ec.stderr).toBe('');
    expect(ec.code).toBe(0);
    const written = JSON.parse(ec.stdout).files as string[];
    const eb = await fs.readFile(
      path.join(
        work,
        'ec',
        written.find((f) => f.endsWith('.eb'))!,
      ),
      'utf8',
    );
    expect(eb).toContain(`# Signed (DSSE) by the key ${fingerprint}`);
    const userMd = await fs.readFile(path.join(work, 'ec', 'USER.md'), 'utf8');
    const command = /^sifkit verify-signature \$SIF --key (\S+)$/m.exec(userMd);
    expect(command?.[1]).toBe('/appl/local/containers/.sifkit/keys/build.pub.pem');
    expect(userMd).toContain(`\`${fingerprint}\` (DSSE)`);
    // The user's command, with LUMI's root standing for this tree's.
    const published = path.join(tree, 'easybuild-sif-images', name);
    const user = await runCli([
      'verify-signature',
      (await fs.stat(published).catch(() => undefined)) ? published : path.join(tree, 'tested-containers', name),
      '--key',
      command![1].replace('/appl/local/containers', tree),
    ]);
    expect(user.code).toBe(0);

    // A copy changed by one byte (in its squashfs partition): no EasyConfig is written for it.
    const copy = path.join(work, 'tampered', name);
    await fs.mkdir(path.dirname(copy));
    await fs.copyFile(v.sif, copy);
    const fh = await fs.open(copy, 'r+');
    const at = Math.floor((await fh.stat()).size / 2);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, at);
    await fh.close();
    const refused = await runCli(['easyconfig', copy, '--root', tree, '--out', path.join(work, 'ec-t')], {
      cwd: work,
      env: defs,
    });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(
      /^sifkit: error: .*object group 1 is not verified: signature \d+: the data of object \d+/m,
    );
    await expect(fs.stat(path.join(work, 'ec-t'))).rejects.toThrow(/ENOENT/);
  });
});
