/**
 * Odd files and a failing environment, met as a user meets them: FIFOs,
 * sockets, devices and directories where a file is meant; mksquashfs
 * refusing its work; a Docker engine that is absent, refuses, or answers
 * with an error; a Slurm controller that does not answer. Each must end
 * in one line, the right exit code, nothing left behind, and no hang.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSlurm } from '../../src/checks/slurm';
import { runCli } from '../support/cli';
import { BUSYBOX } from '../support/engine';
import { layerTar, legacyArchive } from '../support/archives';
import { closedPort } from '../support/ports';

jest.setTimeout(180_000);

/** stderr without hint lines: the error itself must be one line. */
const errorLines = (stderr: string) =>
  stderr
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('sifkit: hint:'));

describe('non-regular files are refused up front, never opened', () => {
  let dir: string;
  let listener: net.Server;
  const odd: Record<string, string> = {};
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-odd-'));
    odd.fifo = path.join(dir, 'pipe.sif');
    execFileSync('mkfifo', [odd.fifo]);
    // A real listening socket: opening it as a file fails, connecting would not.
    odd.socket = path.join(dir, 'daemon.sock');
    listener = net.createServer().listen(odd.socket);
    await new Promise((r) => listener.once('listening', r));
    odd.device = '/dev/null';
    odd.directory = path.join(dir, 'a-directory');
    await fs.mkdir(odd.directory);
  });
  afterAll(async () => {
    await new Promise((r) => listener.close(r));
    await fs.rm(dir, { recursive: true, force: true });
  });

  const kinds: Array<[string, string]> = [
    ['fifo', 'FIFO \\(named pipe\\)'],
    ['socket', 'socket'],
    ['device', 'character device'],
    ['directory', 'directory'],
  ];
  const commands: Array<[string, (f: string) => string[], string]> = [
    ['inspect', (f) => ['inspect', f], 'SIF'],
    ['stage', (f) => ['stage', f, '--untested', '--root', path.join(dir, 'tree')], 'SIF'],
    ['convert', (f) => ['convert', `docker-archive:${f}`, '-o', path.join(dir, 'out.sif')], 'docker archive'],
    ['render', (f) => ['render', f], 'recipe'],
    ['retire --policy', (f) => ['retire', '--policy', f, '--root', path.join(dir, 'tree')], 'retention policy'],
  ];

  it.each(commands)('%s: each odd kind is one line, exit 2, at once', async (_name, args, role) => {
    await fs.mkdir(path.join(dir, 'tree'), { recursive: true });
    for (const [kind, words] of kinds) {
      let file = odd[kind];
      // render takes a .yaml path or a recipe directory: give it the odd thing under that name.
      if (role === 'recipe') {
        file = path.join(dir, `${kind}.yaml`);
        await fs.rm(file, { force: true, recursive: true });
        await fs.symlink(odd[kind], file);
      }
      const started = Date.now();
      const r = await runCli(args(file));
      expect({ kind, code: r.code, lines: errorLines(r.stderr) }).toEqual({
        kind,
        code: 2,
        lines: [expect.stringMatching(new RegExp(`^sifkit: error: ${role} ".*" is a ${words}, not a regular file$`))],
      });
      // No open blocked: a FIFO with no writer would hang forever.
      expect(Date.now() - started).toBeLessThan(30_000);
    }
    expect(await fs.readdir(dir)).not.toContain('out.sif');
  });
});

describe('mksquashfs refusing its work', () => {
  let dir: string;
  let archive: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-squashfail-'));
    archive = path.join(dir, 'image.tar');
    // Big enough that sifkit is still writing when mksquashfs stops reading.
    const layer = await layerTar([
      { name: 'bin', type: 'directory' },
      { name: 'bin/blob', content: randomBytes(6 << 20).toString('base64') },
    ]);
    await legacyArchive(archive, [layer], {
      config: { Env: ['PATH=/bin'], Labels: { 'io.sifkit.stem': 'squashfail' } },
    });
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('an absurd --mksquashfs-mem is bad input (exit 2) before mksquashfs runs: no EPIPE, no partial SIF', async () => {
    const out = path.join(dir, 'x.sif');
    const huge = await runCli(['convert', `docker-archive:${archive}`, '-o', out, '--mksquashfs-mem', '999999G']);
    expect({ code: huge.code, lines: errorLines(huge.stderr) }).toEqual({
      code: 2,
      lines: ['sifkit: error: mksquashfs memory "999999G" is not a size from 16M to 16384G such as 512M or 2G'],
    });
    // Within the absolute bound but more than mksquashfs takes on this host (75% of its memory).
    const over = await runCli(['convert', `docker-archive:${archive}`, '-o', out, '--mksquashfs-mem', '16384G']);
    expect({ code: over.code, lines: errorLines(over.stderr) }).toEqual({
      code: 2,
      lines: [
        expect.stringMatching(
          /^sifkit: error: mksquashfs memory 16384G is more than mksquashfs takes here: 75% of this host's [\d.]+ GiB$/,
        ),
      ],
    });
    for (const r of [huge, over]) expect(r.stderr).not.toMatch(/EPIPE|internal error|mksquashfs failed/);
    expect((await fs.readdir(dir)).sort()).toEqual(['image.tar']);
  });

  it('an output directory it cannot write: one line naming where, exit 1', async () => {
    // /sys refuses new files even to root, who passes every permission check. Converting during the
    // read, sifkit opens the SIF's temp file itself, before any mksquashfs; in two passes mksquashfs does.
    const r = await runCli(['convert', `docker-archive:${archive}`, '-o', '/sys/sifkit-test.sif']);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      expect.stringMatching(
        /^sifkit: error: cannot open \/sys\/\.sifkit-test\.sif\.sifkit-tmp-\S+: permission denied \(EACCES\)$/,
      ),
    ]);
    const twoPass = await runCli(['convert', `docker-archive:${archive}`, '-o', '/sys/sifkit-test.sif'], {
      env: { SIFKIT_CONVERT: 'two-pass' },
    });
    expect(twoPass.code).toBe(1);
    expect(errorLines(twoPass.stderr)).toEqual([
      expect.stringMatching(/^sifkit: error: mksquashfs failed \(exit 1\): Could not create destination file: /),
    ]);
    expect(r.stderr).not.toMatch(/EPIPE|internal error/);
  });
});

describe('a Docker engine that is absent, refuses, or answers with an error', () => {
  let dir: string;
  let dead: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-engine-'));
    // A socket file whose server has gone: connecting is refused.
    dead = path.join(dir, 'dead.sock');
    const srv = net.createServer().listen(dead);
    await new Promise((r) => srv.once('listening', r));
    // Closing the server unlinks its socket file: keep a hard link to it.
    await fs.link(dead, `${dead}.kept`);
    await new Promise((r) => srv.close(r));
    await fs.rename(`${dead}.kept`, dead);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const convertWith = (env: NodeJS.ProcessEnv, ref = BUSYBOX) =>
    runCli(['convert', `docker-daemon:${ref}`, '-o', path.join(dir, 'x.sif')], { env });

  it('no socket at the address: exit 1, named, with a hint', async () => {
    const r = await convertWith({ DOCKER_HOST: `unix://${dir}/none.sock` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sifkit: error: no Docker engine answers at unix://${dir}/none.sock: no socket there (ENOENT)\nsifkit: hint: start one (e.g. \`dockerd --iptables=false --bridge=none &\`, or scripts/services.sh), or set DOCKER_HOST\n`,
    );
  });

  it('a socket nobody listens on: connection refused, exit 1', async () => {
    const r = await convertWith({ DOCKER_HOST: `unix://${dead}` });
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      `sifkit: error: no Docker engine answers at unix://${dead}: connection refused (ECONNREFUSED)`,
    ]);
  });

  it('a closed TCP port: connection refused, exit 1', async () => {
    const port = await closedPort();
    const r = await convertWith({ DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      `sifkit: error: no Docker engine answers at tcp://127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
    ]);
  });

  it("the real engine's error answer (HTTP 400) is shown with its own text, never as a bug", async () => {
    const r = await convertWith({}, 'UPPER/case:1');
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([
      expect.stringMatching(
        /^sifkit: error: the Docker engine refused the request \(HTTP 400\): .*invalid reference format/,
      ),
    ]);
  });

  it("a user without access to the engine's socket: permission denied, exit 1", async () => {
    const sock = '/var/run/docker.sock';
    const st = await fs.stat(sock);
    // Run as nobody, who is neither the socket's owner nor in its group.
    const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString());
    expect(st.uid === nobody || (st.mode & 0o006) !== 0).toBe(false);
    const cli = path.join(__dirname, '..', '..', 'dist', 'src', 'cli', 'main.js');
    const out = (() => {
      try {
        execFileSync(
          'setpriv',
          [
            '--reuid=nobody',
            '--regid=nogroup',
            '--clear-groups',
            process.execPath,
            cli,
            'convert',
            `docker-daemon:${BUSYBOX}`,
            '-o',
            '/tmp/never.sif',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, DOCKER_HOST: `unix://${sock}` } },
        );
        return { code: 0, stderr: '' };
      } catch (e) {
        const err = e as { status: number; stderr: Buffer };
        return { code: err.status, stderr: err.stderr.toString() };
      }
    })();
    expect(out.code).toBe(1);
    expect(errorLines(out.stderr)).toEqual([
      `sifkit: error: no Docker engine answers at unix://${sock}: permission denied on the socket (EACCES)`,
    ]);
    expect(out.stderr).toMatch(/hint: add your user to the docker group/);
  });
});

describe('a Slurm controller that does not answer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-slurmdown-'));
    // The cluster's own configuration, but the controller's port closed.
    const conf = (await fs.readFile(process.env.SLURM_CONF ?? '/etc/slurm/slurm.conf', 'utf8')).replace(
      /^SlurmctldPort=.*$/m,
      '',
    );
    await fs.writeFile(path.join(dir, 'slurm.conf'), `${conf}\nSlurmctldPort=1\n`);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('sbatch cannot submit: "Slurm does not answer" with its own words and a hint, exit 1', async () => {
    const saved = process.env.SLURM_CONF;
    process.env.SLURM_CONF = path.join(dir, 'slurm.conf');
    try {
      const p = runSlurm({
        name: 'down',
        workdir: path.join(dir, 'job'),
        checks: [
          { name: 'hello', ranks: 1, nodes: 1, gpus: 0, env: {}, unset: [], command: 'true', timeoutSeconds: 10 },
        ],
        profile: { partition: 'standard-g', sbatch: [], srun: 'srun', container: '', launcher: '', cleanup: '' },
      });
      await expect(p).rejects.toMatchObject({
        code: 'slurm-down',
        exitCode: 1,
        message: expect.stringMatching(
          /^Slurm does not answer: sbatch failed \(exit 1\): sbatch: error: Batch job submission failed: Unable to contact slurm controller/,
        ),
        hint: expect.stringMatching(/scontrol ping/),
      });
    } finally {
      if (saved === undefined) delete process.env.SLURM_CONF;
      else process.env.SLURM_CONF = saved;
    }
  });
});
