import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { renderFor } from '../support/recipes';

/**
 * The two combinations LUMI released, rendered and compared with golden
 * files that were reviewed line by line against LUMI's 5.4.5 definition
 * (LUMI-EasyBuild-containers __archive__/m/mpi4py/*.docker) and AMD's ROCm
 * 6 recipes (reference §7). Set UPDATE_GOLDEN=1 to rewrite them after a
 * deliberate change.
 */
const RELEASED: Array<Record<string, string>> = [
  {
    rocm: '5.4.5',
    python: '3.10',
    mpi4py: '3.1.4',
    cupy: '12.2.0',
    bci: '15.3.17.20.145',
    miniconda: 'py310_23.3.1-0',
    cpe: '23.03',
    mpich: '8.1.25',
    crayclang: '10.0',
  },
  { rocm: '6.2.0', python: '3.12', mpi4py: '3.1.6' },
];

describe.each(RELEASED)('mpi4py %o', (values) => {
  it('renders the golden definition with LUMI names', async () => {
    const r = await renderFor('mpi4py', values);
    const golden = path.join(__dirname, '..', 'golden', `${r.names.stem}.Dockerfile`);
    if (process.env.UPDATE_GOLDEN) await fs.writeFile(golden, r.dockerfile);
    expect(r.dockerfile).toBe(await fs.readFile(golden, 'utf8'));
    expect(r.names.stem).toBe(`lumi-mpi4py-rocm-${values.rocm}-python-${values.python}-mpi4py-${values.mpi4py}`);
    expect(r.names.tag).toBe(`lumi/lumi-mpi4py:rocm-${values.rocm}-python-${values.python}-mpi4py-${values.mpi4py}`);
    expect(r.names.easyconfig).toBe(
      `mpi4py-${values.mpi4py}-rocm-${values.rocm}-python-${values.python}-singularity-20241007.eb`,
    );
    expect(r.warnings.filter((w) => w.severity === 'error')).toEqual([]);
  });
});

describe('the 6.2.0 definition, line by line against reference §1 and §7', () => {
  let text: string;
  beforeAll(async () => {
    text = (await renderFor('mpi4py', { rocm: '6.2.0', python: '3.12', mpi4py: '3.1.6' })).dockerfile;
  });
  const has = (s: string | RegExp) => expect(text).toMatch(s);

  it('starts from SUSE BCI, pinned to a build, with Leap OSS and devel:languages:perl, GPG off', () => {
    expect(text.split('\n').find((l) => l.startsWith('FROM'))).toBe(
      'FROM registry.suse.com/bci/bci-base:15.5.36.14.13 AS base',
    );
    has("sed -i 's#enabled=1#enabled=0#g' /etc/zypp/repos.d/SLE_BCI.repo");
    has('distribution/leap/15.5/repo/oss/');
    has('devel:/languages:/perl/SLE_15_SP5');
    has('gpgcheck=0');
    has(/gcc12 gcc12-c\+\+ gcc12-fortran zlib-devel numactl/);
    has(/libjansson4 libnl3-200 ; /);
  });
  it('points at the Cray PE without shipping it', () => {
    has('ENV CPE_VERSION="24.03"');
    // The server URL is composed inside each RUN that fetches: no ENV keeps it.
    expect(text).not.toContain('CPE_URL');
    expect(text).not.toContain('SERVER_PREFIX');
    has('curl -fsSL -o /cpe.tar "http://127.0.0.1:${SERVER_PORT}/cpe-${CPE_VERSION}.tar"');
    has('ENV LIBFABRIC_PATH="/opt/cray/libfabric/1.15.2.0"');
    has('ENV MPICH_PATH="/opt/cray/pe/mpich/8.1.29/ofi/crayclang/17.0"');
    has('ENV REMOVE_CRAY_DEPS="rm -rf /opt/cray /opt/cray-deps /usr/lib64/libcxi.so*"');
    has(
      /LD_LIBRARY_PATH="\/opt\/cray-deps:.*libfabric.*lib64:.*mpich.*\/lib:\/opt\/cray\/pe\/lib64:\/opt\/cray\/pe\/lib64\/cce"/,
    );
  });
  it("installs ROCm as AMD's 6.x recipes do, with the served rocminfo", () => {
    has('amdgpu-install/6.2/sle/15.5/amdgpu-install-6.2.60200-1.noarch.rpm');
    // AMD removed the libtbb12 repository again (sfantao/LUMI-containers 5e0fe91), and so do we.
    expect(text).not.toContain('c_c++');
    has('zypper --no-gpg-checks -n install --oldpackage libsystemd0-249.16 libudev1-249.16');
    has('amdgpu-install -y --no-dkms --usecase=rocm --rocmrelease=6.2.0');
    has('zypper --no-gpg-checks -n install -y --force miopen-hip-gfx90akdb');
    has('ENV ROCM_PATH="/opt/rocm-6.2.0"');
    has('ENV RCCL_DEBUG="0"');
    has('curl -fsSL -o rocm_agent_enumerator "http://127.0.0.1:${SERVER_PORT}/rocm_agent_enumerator"');
    has('curl -fsSL -o rocminfo "http://127.0.0.1:${SERVER_PORT}/rocminfo"');
    expect(text).not.toContain('--force omniperf');
    has('g++-12 /tmp/amdgpu-arch.cpp -DNUM_TARGETS=8 -o amdgpu-arch');
    expect(text).not.toContain('libstdc++.so');
  });
  it('has miniconda, the mpi4py env and the WITH_CONDA users see', () => {
    has('bash /tmp/miniconda.sh -b -p /opt/miniconda3');
    has('conda create -y -n mpi4py python=3.12');
    has('ENV WITH_CONDA="source /opt/miniconda3/bin/activate mpi4py"');
  });
  it("builds cupy from AMD's ROCm fork for HIP on gfx90a, not from PyPI", () => {
    // The fork at its pinned commit, from the source cache (sources.cupy-rocm), never a clone in the build.
    has(
      `curl -fsS -o '/tmp/cupy-rocm.tar' "http://127.0.0.1:\${SERVER_PORT}/sources/git/72ea1f14cd454f7f2aa22a0866a6bafeed632532-recursive.tar"`,
    );
    has('tar -xf /tmp/cupy-rocm.tar -C /opt/cupy-build');
    expect(text).not.toContain('git clone');
    has('export CUPY_INSTALL_USE_HIP=1');
    has('export HCC_AMDGPU_TARGET=gfx90a');
    has('python setup.py bdist_wheel');
    expect(text).not.toMatch(/pip install[^\n]*cupy==/);
  });
  it('builds mpi4py against Cray MPICH with the GTL', () => {
    has('echo "[lumi]" >> mpi.cfg');
    has('libraries    = mpi_cray mpi_gtl_hsa');
    has('python setup.py build --mpi=lumi');
    // mpi4py 3.1.6's sdist by the digest Spack publishes for it (recipe.yaml sources.mpi4py).
    has('/sources/sha256/c8fa625e0f92b082ef955bfb52f19fa6691d29273d7d71135d295aa143dee6cb');
  });
  it('builds OSU with ROCm into /opt/osu', () => {
    has('--enable-rocm --with-rocm=$ROCM_PATH --prefix=$OSU_PATH');
    has('CFLAGS="-I$MPICH_PATH/include -D__HIP_PLATFORM_AMD__=1"');
    has('/sources/sha256/1a4e1f2aab0e65404b3414e23bd46616184b69b6231ce9313d9c630bd6e633c1');
    has('ENV OSU_PATH="/opt/osu"');
    has('-lmpi_cray -lmpi_gtl_hsa');
  });
  it('builds each component in a stage after only what it uses, and copies them into the image (issue 27.3)', () => {
    const froms = text.split('\n').filter((l) => l.startsWith('FROM '));
    expect(froms).toEqual([
      'FROM registry.suse.com/bci/bci-base:15.5.36.14.13 AS base',
      'FROM base AS rocm',
      'FROM rocm AS osu',
      'FROM scratch AS checks',
      'FROM base AS python',
      'FROM rocm AS image',
    ]);
    // Python (Miniconda, the environment, numpy) is built without ROCm and copied into the image.
    const python = text.slice(text.indexOf('FROM base AS python'), text.indexOf('FROM rocm AS image'));
    expect(python).toContain('conda create -y -n mpi4py python=3.12');
    expect(python).not.toMatch(/\$ROCM_PATH|CUPY_|setup\.py build/);
    // The image stage has CuPy and mpi4py; OSU's build and Python's install are not in it.
    const image = text.slice(text.indexOf('FROM rocm AS image'));
    expect(image).toMatch(
      /^COPY --from=python \/opt\/miniconda3 \/opt\/miniconda3\nCOPY --from=python \/root \/root\nENV WITH_CONDA="source \/opt\/miniconda3\/bin\/activate mpi4py"\n/m,
    );
    expect(image).not.toMatch(/--enable-rocm|conda create|miniconda\.sh/);
    expect(image).toMatch(/COPY --from=osu \/opt\/osu \/opt\/osu\nENV OSU_VERSION="7\.2"\nENV OSU_PATH="\/opt\/osu"\n/);
    expect(image).toContain('COPY --from=checks /opt/sifkit-checks /opt/sifkit-checks');
    // Each stage that fetches from the file server declares its arguments.
    for (const stage of text.split(/^FROM /m).slice(1))
      if (/^[^#].*\$\{SERVER_PORT\}/m.test(stage)) expect(stage).toMatch(/^ARG SERVER_PORT$/m);
  });
  it('removes the Cray files in the same RUN that fetched them, every time', () => {
    // Split into instructions; each RUN that fetches $CPE_URL must end with $REMOVE_CRAY_DEPS.
    const runs = text
      .replace(/\\\n/g, ' ')
      .split('\n')
      .filter((l) => l.startsWith('RUN'));
    const fetching = runs.filter((r) => r.includes('/cpe-${CPE_VERSION}.tar'));
    expect(fetching.length).toBe(2);
    for (const r of fetching) expect(r.trim().endsWith('$REMOVE_CRAY_DEPS')).toBe(true);
  });
  it('carries the provenance labels', () => {
    has(/io\.sifkit\.definition-hash="[0-9a-f]{64}"/);
    has('io.sifkit.recipe="mpi4py"');
    has('io.sifkit.param.rocm="6.2.0"');
    has('org.opencontainers.image.revision="test-revision"');
  });
});

describe('the 5.4.5 definition, against the one LUMI built (LUMI-EasyBuild-containers __archive__/m/mpi4py/lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4.docker)', () => {
  let text: string;
  beforeAll(async () => {
    text = (await renderFor('mpi4py', RELEASED[0])).dockerfile;
  });
  it.each([
    'FROM registry.suse.com/bci/bci-base:15.3.17.20.145 AS base\n',
    'distribution/leap/15.3/repo/oss/',
    'devel:/languages:/perl/SLE_15_SP3',
    'gcc10 gcc10-c++ gcc10-fortran',
    'ENV CPE_VERSION="23.03"',
    'ENV MPICH_PATH="/opt/cray/pe/mpich/8.1.25/ofi/crayclang/10.0"',
    'amdgpu-install/5.4.5/sle/15.3/amdgpu-install-5.4.50405-1.noarch.rpm',
    'amdgpu-install -y --no-dkms --usecase=hiplibsdk,rocm --rocmrelease=5.4.5',
    'ENV RCCL_DEBUG="0"',
    'ln -sf /usr/lib64/libstdc++.so* .',
    // The installer by the digest Anaconda publishes for it.
    '/sources/sha256/aef279d6baea7f67940f16aad17ebe5f6aac97487c7c03466ff01f4819e5a651',
    'export HCC_AMDGPU_TARGET=gfx90a',
    'pip install --no-cache-dir cupy==12.2.0',
    '/sources/sha256/1a4e1f2aab0e65404b3414e23bd46616184b69b6231ce9313d9c630bd6e633c1',
    'CFLAGS=-I$MPICH_PATH/include \\',
  ])('has %j', (s) => {
    expect(text).toContain(s);
  });
  it.each([
    'libjansson4',
    'libsystemd0-249.16',
    'miopen-hip',
    'CUPY_SOURCE',
    '__HIP_PLATFORM_AMD__=1"',
    'amdgpu-arch',
    'c_c++',
  ])("has no %j (LUMI's 5.4.5 image had none)", (s) => {
    expect(text.replace(/^#.*$/gm, '')).not.toContain(s);
  });
});
