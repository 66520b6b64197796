import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runSlurm } from '../../src/checks/slurm';
import type { Check } from '../../src/recipe/checks';
import { CONDA_PYTHON_SIMPLE, startShell, varSuffix } from '../../src/easybuild/easyconfig';
import { runCli } from '../support/cli';

jest.setTimeout(900_000);

const EXAMPLE = 'lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4-conda-mpi4py';
const SIFVAR = `SIF${varSuffix('mpi4py-cpu')}`;
const run = promisify(execFile);

/**
 * The seed's smoke test (`srun ... singularity exec $SIF
 * /runscripts/conda-python-simple -c 'import mpi4py'`) and the module's
 * start-shell, the scripts exactly as the EasyConfig installs them, run
 * against the built CPU example: through the engine here, and as job steps
 * of the real Slurm through sifkit's Slurm runner. singularity cannot be
 * installed here: test/support/singularity-via-docker.sh runs its `exec`
 * as `docker run`, binding $SINGULARITY_BIND as singularity would.
 */
describe("the module's scripts against the CPU example", () => {
  let dir: string;
  let shim: string;
  let installdir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    expect((await runCli(['build', 'mpi4py-cpu', '--json'])).code).toBe(0);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-modscripts-'));
    shim = path.join(dir, 'shim');
    await fs.mkdir(shim);
    await fs.copyFile(
      path.join(__dirname, '..', 'support', 'singularity-via-docker.sh'),
      path.join(shim, 'singularity'),
    );
    await fs.chmod(path.join(shim, 'singularity'), 0o755);
    installdir = path.join(dir, 'install');
    await fs.mkdir(path.join(installdir, 'runscripts'), { recursive: true });
    await fs.mkdir(path.join(installdir, 'bin'));
    await fs.writeFile(path.join(installdir, 'runscripts', 'conda-python-simple'), CONDA_PYTHON_SIMPLE, {
      mode: 0o755,
    });
    await fs.writeFile(path.join(installdir, 'bin', 'start-shell'), startShell(SIFVAR), { mode: 0o755 });
    // What `module load` sets, less the LUMI paths that do not exist on this host.
    env = {
      PATH: `${shim}:${installdir}/bin:/usr/bin:/bin`,
      SIF: EXAMPLE,
      [SIFVAR]: EXAMPLE,
      SINGULARITY_BIND: `${installdir}/runscripts:/runscripts`,
    };
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it("runs the seed's smoke test through the engine", async () => {
    const r = await run(
      'singularity',
      ['exec', EXAMPLE, '/runscripts/conda-python-simple', '-c', 'import mpi4py; print("smoke", mpi4py.__version__)'],
      { env },
    );
    expect(r.stdout).toBe('smoke 3.1.4\n');
  });

  it('start-shell gives a shell in the container, without the environment until $WITH_CONDA', async () => {
    const r = await run(
      'start-shell',
      ['-c', 'command -v python || echo no-python; $WITH_CONDA; python -c "import mpi4py; print(mpi4py.__version__)"'],
      { env },
    );
    expect(r.stdout).toBe('no-python\n3.1.4\n');
  });

  it('start-shell inside a container just starts bash there', async () => {
    const r = await run('docker', [
      'run',
      '--rm',
      '--network=none',
      '-v',
      `${installdir}/bin:/modbin:ro`,
      EXAMPLE,
      'bash',
      '-c',
      'mkdir -p /.singularity.d && touch /.singularity.d/Singularity && /modbin/start-shell -c "echo inside \\$0"',
    ]);
    expect(r.stdout).toBe('inside bash\n');
  });

  it('runs both through the real Slurm, as job steps', async () => {
    const check = (name: string, command: string, expect: string): Check => ({
      name,
      ranks: 1,
      nodes: 1,
      gpus: 0,
      env: {},
      unset: [],
      command,
      expect,
      timeoutSeconds: 300,
    });
    const base = { partition: 'standard-g', sbatch: [], srun: 'srun -N {nodes} -n 1', launcher: '', cleanup: '' };
    const seen = {
      SINGULARITY_BIND: `{workdir}:/myrun,${installdir}/runscripts:/runscripts`,
      SIF: '{image}',
      [SIFVAR]: '{image}',
      PATH: `${shim}:${installdir}/bin:/usr/bin:/bin`,
    };
    const envPrefix = `env ${Object.entries(seen)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`;
    const [smoke, shell] = await Promise.all([
      // srun ... singularity exec $SIF /runscripts/conda-python-simple -c 'import mpi4py'
      runSlurm({
        name: 'sifkit-smoke',
        workdir: path.join(dir, 'smoke'),
        image: EXAMPLE,
        checks: [
          check(
            'smoke',
            `/runscripts/conda-python-simple -c 'import mpi4py; print("smoke", mpi4py.__version__)'`,
            'smoke 3.1.4',
          ),
        ],
        profile: { ...base, container: `${envPrefix} singularity exec {image}` },
      }),
      // srun ... start-shell SCRIPT: the step's script runs in the container's bash.
      runSlurm({
        name: 'sifkit-start-shell',
        workdir: path.join(dir, 'shell'),
        image: EXAMPLE,
        checks: [check('start-shell', `python -c 'import mpi4py; print("shell", mpi4py.__version__)'`, 'shell 3.1.4')],
        profile: { ...base, container: `${envPrefix} start-shell` },
      }),
    ]);
    for (const r of [smoke, shell]) {
      expect({ state: r.state, results: r.results.map((c) => [c.name, c.passed, c.exitCode]) }).toEqual({
        state: 'COMPLETED',
        results: [[r.results[0].name, true, 0]],
      });
    }
  });
});
