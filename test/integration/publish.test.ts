import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { makeSif } from '../support/sifs';
import { FakeGitHub } from '../support/github-server';
import { easyconfigValues } from '../support/easyconfig';
import { closedPort } from '../support/ports';

jest.setTimeout(120_000);

const DATE = '20241007';
const EB = `mpi4py-3.1.6-rocm-6.2.0-python-3.12-singularity-${DATE}.eb`;
const MODULE = `mpi4py/3.1.6-rocm-6.2.0-python-3.12-singularity-${DATE}`;
const WITH_CONDA = 'source /opt/miniconda3/bin/activate mpi4py';
const TOKEN = 'ghp_sifkitTestToken0123456789abcdef';

describe('EasyConfig, module and pull request for a released image', () => {
  let dir: string;
  let root: string;
  let sifName: string;
  let dockerhash: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-publish-'));
    root = path.join(dir, 'tree');
    await fs.mkdir(root);
    const rendered = JSON.parse((await runCli(['render', 'mpi4py', '--json'])).stdout);
    const sif = path.join(dir, 'in.sif');
    ({ name: sifName, dockerhash } = await makeSif(sif, {
      stem: rendered.names.stem,
      recipe: 'mpi4py',
      params: rendered.parameters,
      env: [`WITH_CONDA=${WITH_CONDA}`, 'PATH=/usr/bin'],
      labels: { 'io.sifkit.definition-hash': rendered.definitionHash },
    }));
    expect((await runCli(['stage', sif, '--untested', '--root', root])).code).toBe(0);
    expect((await runCli(['promote', sifName, '--to', 'all', '--root', root])).code).toBe(0);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it("writes an EasyConfig with LUMI's structure whose values are the SIF's", async () => {
    const out = path.join(dir, 'eb');
    const r = await runCli(['easyconfig', sifName, '--root', root, '--date', DATE, '--out', out]);
    expect(r.code).toBe(0);
    const v = easyconfigValues(path.join(out, EB));
    // LUMI's released mpi4py 3.1.6 / ROCm 6.2.0 EasyConfig, field by field (reference §4).
    expect(
      Object.keys(v)
        .filter((k) => !k.startsWith('local_'))
        .sort(),
    ).toEqual(
      [
        'SYSTEM',
        'description',
        'docurls',
        'easyblock',
        'files_to_copy',
        'homepage',
        'modextravars',
        'modluafooter',
        'moduleclass',
        'name',
        'postinstallcmds',
        'sanity_check_paths',
        'skipsteps',
        'sources',
        'toolchain',
        'version',
        'versionsuffix',
        'whatis',
      ].sort(),
    );
    expect(v).toMatchObject({
      easyblock: 'MakeCp',
      name: 'mpi4py',
      version: '3.1.6',
      versionsuffix: `-rocm-6.2.0-python-3.12-singularity-${DATE}`,
      toolchain: { name: 'system', version: 'system' },
      local_version: '3.1.6',
      local_rocm_version: '6.2.0',
      local_python_version: '3.12',
      local_date: DATE,
      local_hash: dockerhash,
      local_sif: sifName,
      skipsteps: ['build'],
      sanity_check_paths: { files: ['bin/start-shell', 'runscripts/conda-python-simple'], dirs: [] },
      modextravars: {
        RUNSCRIPTS: '%(installdir)s/runscripts',
        RUNSCRIPTSMPI4PY: '%(installdir)s/runscripts',
        SINGULARITY_BIND:
          '/var/spool/slurmd,/opt/cray,/usr/lib64/libcxi.so.1,/usr/lib64/libjansson.so.4,%(installdir)s/runscripts:/runscripts,/pfs,/scratch,/projappl,/project,/flash,/appl',
      },
      moduleclass: 'devel',
    });
    expect(v.sources).toEqual([
      { filename: sifName, extract_cmd: '/bin/cp -L %s .' },
      { filename: 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6.docker', extract_cmd: '/bin/cp -L %s .' },
    ]);
    expect(v.files_to_copy).toEqual([
      [[sifName], '.'],
      [['lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6.docker'], 'share/docker-defs/'],
    ]);
    expect(String(v.modluafooter)).toContain(`create_container_vars('${sifName}', 'mpi4py', '%(installdir)s')`);
    // The Docker definition is the one the image was built from.
    expect(
      await fs.readFile(path.join(out, 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6.docker'), 'utf8'),
    ).toContain('FROM registry.suse.com');
  });

  it('installs the two scripts as EasyBuild would run its postinstallcmds', async () => {
    const v = easyconfigValues(path.join(dir, 'eb', EB));
    const installdir = path.join(dir, 'install');
    await fs.mkdir(installdir);
    for (const cmd of v.postinstallcmds as string[])
      execFileSync('bash', ['-c', cmd.replace(/%\(installdir\)s/g, installdir)]);
    const simple = await fs.readFile(path.join(installdir, 'runscripts/conda-python-simple'), 'utf8');
    expect(simple).toMatch(/^#!\/bin\/bash -e\n[\s\S]*\n\$WITH_CONDA\n[\s\S]*python "\$@"\n/);
    const shell = await fs.readFile(path.join(installdir, 'bin/start-shell'), 'utf8');
    expect(shell).toContain('if [ -f /.singularity.d/Singularity ]');
    expect(shell).toContain('singularity exec "$SIFMPI4PY" bash "$@"');
    // And it runs: outside a container it calls singularity with the SIF.
    const fakeBin = path.join(dir, 'fakebin');
    await fs.mkdir(fakeBin, { recursive: true });
    await fs.writeFile(path.join(fakeBin, 'singularity'), '#!/bin/sh\necho "singularity $*"\n', { mode: 0o755 });
    expect(
      execFileSync(path.join(installdir, 'bin/start-shell'), ['-c', 'true'], {
        env: { PATH: `${fakeBin}:/usr/bin:/bin`, SIFMPI4PY: '/x.sif' },
      }).toString(),
    ).toBe('singularity exec /x.sif bash -c true\n');
  });

  it("writes the user page with this release's module, EasyConfig and WITH_CONDA", async () => {
    const page = await fs.readFile(path.join(dir, 'eb', 'USER.md'), 'utf8');
    expect(page).toContain(`module load LUMI ${MODULE}`);
    expect(page).toContain(`eb ${EB}`);
    expect(page).toContain(`\`${WITH_CONDA}\``);
    // LUMI's central tree, never the --root of whoever ran the command.
    expect(page).toContain('`/appl/local/containers/easybuild-sif-images`');
    expect(page).not.toContain(root);
    expect(page.match(/\{\{[^}]*\}\}/g)).toBeNull();
  });

  it('writes a module that real Lmod loads, and that refuses once the SIF is gone', async () => {
    const out = path.join(dir, 'mod');
    const r = await runCli(['module', sifName, '--root', root, '--date', DATE, '--out', out]);
    expect(r.code).toBe(0);
    const lmod = (extra = '') =>
      execFileSync(
        'bash',
        [
          '-c',
          `source /usr/share/lmod/lmod/init/bash; module use ${out}/modules; module load ${MODULE} ${extra}; rc=$?; echo "rc=$rc"; echo "SIF=$SIF"; echo "SIFMPI4PY=$SIFMPI4PY"; echo "RUNSCRIPTS=$RUNSCRIPTS"; echo "RUNSCRIPTSMPI4PY=$RUNSCRIPTSMPI4PY"; echo "BIND=$SINGULARITY_BIND"; command -v start-shell`,
        ],
        { env: { PATH: '/usr/bin:/bin', HOME: dir } },
      ).toString();
    const loaded = lmod();
    const installdir = path.join(out, 'software', 'mpi4py', MODULE.split('/')[1]);
    expect(loaded).toContain('rc=0');
    expect(loaded).toContain(`SIF=${root}/easybuild-sif-images/${sifName}`);
    expect(loaded).toContain(`SIFMPI4PY=${root}/easybuild-sif-images/${sifName}`);
    expect(loaded).toContain(`RUNSCRIPTS=${installdir}/runscripts`);
    expect(loaded).toContain(`RUNSCRIPTSMPI4PY=${installdir}/runscripts`);
    expect(loaded).toContain(
      `BIND=/var/spool/slurmd,/opt/cray,/usr/lib64/libcxi.so.1,/usr/lib64/libjansson.so.4,${installdir}/runscripts:/runscripts,/pfs,/scratch,/projappl,/project,/flash,/appl`,
    );
    expect(loaded).toContain(`${installdir}/bin/start-shell`);
    // Set but empty, LUMI_CONTAINER_REPOSITORY_ROOT counts as unset (as LUMI's Lua has it).
    const emptyRoot = execFileSync(
      'bash',
      [
        '-c',
        `source /usr/share/lmod/lmod/init/bash; module use ${out}/modules; module load ${MODULE}; echo "rc=$?"; echo "SIF=$SIF"`,
      ],
      { env: { PATH: '/usr/bin:/bin', HOME: dir, LUMI_CONTAINER_REPOSITORY_ROOT: '' } },
    ).toString();
    expect(emptyRoot).toContain('rc=0');
    expect(emptyRoot).toContain(`SIF=${root}/easybuild-sif-images/${sifName}`);
    const sif = path.join(root, 'easybuild-sif-images', sifName);
    await fs.rename(sif, `${sif}.away`);
    try {
      const refused = execFileSync(
        'bash',
        [
          '-c',
          `source /usr/share/lmod/lmod/init/bash; module use ${out}/modules; module load ${MODULE} 2>&1; echo "rc=$?"`,
        ],
        { env: { PATH: '/usr/bin:/bin', HOME: dir } },
      ).toString();
      expect(refused).toMatch(/cannot\s+locate\s+the\s+singularity\s+container\s+file\s+\S*dockerhash/);
      expect(refused).toMatch(/may\s+have been removed from the system/);
      expect(refused).toContain('rc=1');
    } finally {
      await fs.rename(`${sif}.away`, sif);
    }
  });

  describe('publish: a pull request through Octokit, against a local GitHub', () => {
    let gh: FakeGitHub;
    const OLD = 'easybuild/easyconfigs/m/mpi4py/mpi4py-3.1.4-rocm-5.4.5-python-3.10-singularity-20240315.eb';
    beforeEach(async () => {
      gh = new FakeGitHub('Lumi-supercomputer', 'LUMI-EasyBuild-containers', TOKEN, {
        'README.md': 'contrib\n',
        [OLD]: "name = 'mpi4py'\n",
      });
      await gh.start();
    });
    afterEach(() => gh.stop());
    const publish = (extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
      // No --repo: the default is LUMI's EasyConfig repository for containers. An --api-url in
      // `extra` replaces the local GitHub's (a flag of one value given twice is refused).
      runCli(
        [
          'publish',
          sifName,
          '--root',
          root,
          '--date',
          DATE,
          ...(extra.includes('--api-url') ? [] : ['--api-url', gh.url]),
          '--json',
          ...extra,
        ],
        { env: { GITHUB_TOKEN: TOKEN, SIFKIT_GITHUB_BACKOFF_MS: '50', ...env } },
      );

    it('opens one PR with the files and the archive move, and updates it on a rerun', async () => {
      const first = await publish(['--archive', path.basename(OLD)]);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const r = JSON.parse(first.stdout);
      expect(r).toMatchObject({
        ok: true,
        committed: true,
        pr: { number: 1, created: true },
        branch: `sifkit/${EB.replace(/\.eb$/, '')}`,
      });
      const files = gh.files(r.branch);
      expect(Object.keys(files).sort()).toEqual(
        [
          'README.md',
          `easybuild/easyconfigs/__archive__/m/mpi4py/${path.basename(OLD)}`,
          `easybuild/easyconfigs/m/mpi4py/${EB}`,
          'easybuild/easyconfigs/m/mpi4py/USER.md',
          'easybuild/easyconfigs/m/mpi4py/lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6.docker',
        ].sort(),
      );
      expect(files[`easybuild/easyconfigs/m/mpi4py/${EB}`]).toMatch(new RegExp(`local_hash\\s+= '${dockerhash}'`));
      expect(gh.pulls[0].body).toContain(sifName);
      expect(gh.pulls[0].body).toMatch(/sha256 \| `[0-9a-f]{64}`/);
      expect(gh.files('main')[OLD]).toBeDefined(); // the default branch is untouched
      const again = JSON.parse((await publish(['--archive', path.basename(OLD)])).stdout);
      expect(again).toMatchObject({ committed: false, pr: { number: 1, created: false } });
      expect(gh.pulls).toHaveLength(1);
    });

    it('retries server errors and rate limits with backoff', async () => {
      gh.failNext(2, 502, { message: 'Bad Gateway' }, undefined, /^GET \/repos\/[^/]+\/[^/]+$/);
      gh.failNext(
        1,
        403,
        { message: 'API rate limit exceeded' },
        { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000)) },
        /POST .*\/git\/trees/,
      );
      const r = await publish();
      expect(r.code).toBe(0);
      expect(r.stderr.match(/retrying/g)).toHaveLength(3);
      expect(gh.requests.filter((x) => x.status === 502)).toHaveLength(2);
      expect(gh.pulls).toHaveLength(1);
    });

    it('explains 401, 403, 404 and 422 in one line each, never showing the token', async () => {
      const cases: Array<[() => void, string[], NodeJS.ProcessEnv, number, RegExp]> = [
        [() => undefined, [], { GITHUB_TOKEN: 'wrong-token' }, 2, /GitHub refused the token \(401 Bad credentials\)/],
        [
          () => {
            gh.readOnly = true;
          },
          [],
          {},
          3,
          /GitHub forbids this for Lumi-supercomputer\/LUMI-EasyBuild-containers \(403: Resource not accessible/,
        ],
        [
          () => undefined,
          ['--repo', 'someone/elsewhere'],
          {},
          2,
          /someone\/elsewhere not found, or the token cannot see it \(404\)/,
        ],
        [
          () => gh.failNext(1, 422, { message: 'Validation Failed' }, undefined, /POST .*\/pulls/),
          [],
          {},
          2,
          /GitHub rejected the request \(422: Validation Failed\)/,
        ],
      ];
      for (const [setup, extra, env, code, message] of cases) {
        setup();
        const r = await publish(extra, env);
        expect({ code: r.code, line: r.stderr.split('\n')[0] }).toEqual({ code, line: expect.stringMatching(message) });
        expect(r.stdout + r.stderr).not.toContain(TOKEN);
        gh.readOnly = false;
      }
    });

    it('reports a 200 answer that is not what the API documents in one line (exit 1), never a TypeError', async () => {
      gh.failNext(1, 200, { default_branch: { nested: true } }, undefined, /^GET \/repos\/[^/]+\/[^/]+$/);
      const r = await publish();
      expect({ code: r.code, line: r.stderr.split('\n')[0] }).toEqual({
        code: 1,
        line: 'sifkit: error: GitHub answered with something its API does not document: the answer to GET repository: default_branch: expected a string, found a mapping',
      });
      expect(r.stderr).not.toMatch(/TypeError|internal error/);
      expect(gh.pulls).toHaveLength(0);
    });

    it('checks --api-url before any request: not a URL, not http(s), a password in it, plain http to another host', async () => {
      const cases: Array<[string, number, RegExp]> = [
        ['not a url', 2, /--api-url "not a url" is not a URL/],
        ['ftp://example.org/api', 2, /is not http\(s\)/],
        ['https://user:secret@example.org', 2, /must not carry a user or password/],
        ['http://github.example.org/api/v3', 3, /plain http to another host/],
      ];
      for (const [url, code, message] of cases) {
        const started = Date.now();
        const r = await publish(['--api-url', url]);
        expect({
          code: r.code,
          lines: r.stderr
            .trim()
            .split('\n')
            .filter((l) => !l.includes('hint:')),
        }).toEqual({ code, lines: [expect.stringMatching(message)] });
        expect(r.stderr).not.toContain('secret');
        expect(Date.now() - started).toBeLessThan(10_000);
      }
      expect(gh.requests).toHaveLength(0);
    });

    it('names network failures with the host and does not retry what waiting cannot mend', async () => {
      const closed = await closedPort();
      const refused = await publish(['--api-url', `http://127.0.0.1:${closed}`]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.split('\n')[0]).toBe(
        `sifkit: error: GitHub cannot be reached: connection refused: 127.0.0.1:${closed} (ECONNREFUSED)`,
      );
      expect(refused.stderr).not.toMatch(/retrying|500/);
      // TLS spoken to a server that speaks plain HTTP: the handshake fails.
      const tls = await publish(['--api-url', gh.url.replace('http:', 'https:')]);
      expect(tls.code).toBe(1);
      expect(tls.stderr.split('\n')[0]).toMatch(
        /^sifkit: error: GitHub cannot be reached: the TLS handshake failed: 127\.0\.0\.1:\d+/,
      );
      const dns = await publish(['--api-url', 'https://no-such-host.invalid']);
      expect(dns.code).toBe(1);
      expect(dns.stderr.split('\n')[0]).toMatch(
        /^sifkit: error: GitHub cannot be reached: the host name does not resolve: no-such-host\.invalid \((ENOTFOUND|EAI_AGAIN)\)/,
      );
    });

    it('repeats a GET that timed out, and reports a request that never answers as a timeout', async () => {
      gh.loseAnswer('hang', /^GET \/repos\/[^/]+\/[^/]+$/);
      const r = await publish([], { SIFKIT_GITHUB_TIMEOUT_MS: '1000' });
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/GET \/repos\/\{owner\}\/\{repo\}: no answer in time, retrying \(attempt 2\)/);
      for (let i = 0; i < 4; i++) gh.loseAnswer('hang', /^GET \/repos\/[^/]+\/[^/]+$/);
      const down = await publish([], { SIFKIT_GITHUB_TIMEOUT_MS: '500' });
      expect(down.code).toBe(1);
      expect(down.stderr).toMatch(
        /^sifkit: error: GitHub cannot be reached: no answer in time: 127\.0\.0\.1:\d+ \(0\.5 s\)$/m,
      );
    });

    it('does not repeat a branch or pull request whose answer was lost: it looks whether it exists', async () => {
      gh.loseAnswer('drop', /^POST .*\/git\/refs$/);
      gh.loseAnswer('drop', /^POST .*\/pulls$/);
      const r = await publish();
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, committed: true, pr: { number: 1, created: true } });
      expect(
        r.stderr.match(
          /the answer was lost \(the connection was dropped before the answer\), but the request was applied/g,
        ),
      ).toHaveLength(2);
      // Each was sent once: no second branch attempt, no second pull request.
      expect(gh.requests.filter((x) => x.method === 'POST' && /\/(git\/refs|pulls)$/.test(x.path))).toHaveLength(2);
      expect(gh.pulls).toHaveLength(1);
    });

    it('sends a pull request again only when the lost one was not applied', async () => {
      gh.failNext(1, 502, { message: 'Bad Gateway' }, undefined, /^POST .*\/pulls$/);
      const r = await publish();
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/the answer was lost \(502\) and the request was not applied; sending it again/);
      expect(gh.pulls).toHaveLength(1);
    });

    it('reports a rate limit that resets too late, and server errors that last, in one line', async () => {
      gh.failNext(
        1,
        403,
        { message: 'API rate limit exceeded' },
        { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600) },
      );
      const limited = await publish();
      expect(limited.code).toBe(1);
      expect(limited.stderr.split('\n')[0]).toBe(
        "sifkit: error: GitHub's rate limit is used up (403: API rate limit exceeded)",
      );
      gh.failNext(4, 503, { message: 'Service Unavailable' }, undefined, /^GET \/repos\/[^/]+\/[^/]+$/);
      const down = await publish();
      expect(down.code).toBe(1);
      expect(down.stderr.match(/retrying/g)).toHaveLength(3);
      expect(down.stderr).toMatch(/^sifkit: error: GitHub request failed \(503\): Service Unavailable$/m);
    });

    it('refuses to run without GITHUB_TOKEN', async () => {
      const r = await publish([], { GITHUB_TOKEN: '' });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^sifkit: error: GITHUB_TOKEN is not set/);
    });
  });
});
