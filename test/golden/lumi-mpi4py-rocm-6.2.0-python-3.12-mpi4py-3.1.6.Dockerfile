# ---- fragments/sles-base.docker ----
# SUSE BCI base, the same OS family as LUMI's hosts (SLES 15 SP-x), pinned to
# a full BCI build tag so a rebuild starts from the same bytes.
# Follows: Lumi-supercomputer/LUMI-EasyBuild-containers
#   easybuild/easyconfigs/__archive__/m/mpi4py/lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4.docker
#   @ af6fb1c5ab09ad74baa161700114becd27009389 (SLES 15.3, gcc 10: as LUMI built ROCm 5.4.5)
# and sfantao/LUMI-containers RecipesDocker/common/Dockerfile.header
#   @ 0da67382e0fb574f1273ec05042701b5e61a3a22 (SLES 15.5: gcc 12, libjansson4, libnl3-200).
# Stages (issue 27.3: a component is built once per set of what it uses,
# and after only what it uses):
#   base    this OS with its build tools (here);
#   rocm    FROM base: the Cray info and ROCm (cray-info.docker, rocm.docker);
#   osu     FROM rocm: OSU needs ROCm and the CPE, not Python (osu.docker);
#   checks  FROM scratch: the checks' files need nothing, not the OS (checks.docker);
#   python  FROM base: Miniconda, the environment and numpy need no ROCm
#           (miniconda.docker, conda-env.docker);
#   image   FROM rocm, with /opt/miniconda3 (and what conda wrote in /root)
#           copied from python: CuPy and mpi4py need ROCm's compilers and
#           Python (conda-env.docker opens it; cupy.docker, mpi4py-cray.docker);
#           components.docker copies OSU and the checks in.
# So OSU is built once per ROCm, Python once per OS and Python release,
# whatever the rest; the image has the same files as when all was one stage.
FROM registry.suse.com/bci/bci-base:15.5.36.14.13 AS base

# The BCI repositories are too small for a build toolchain: turn them off and
# use openSUSE Leap OSS plus devel:languages:perl instead, GPG checks off.
RUN set -eux ; \
  sed -i 's#enabled=1#enabled=0#g' /etc/zypp/repos.d/SLE_BCI.repo ; \
  zypper -n addrepo http://download.opensuse.org/distribution/leap/15.5/repo/oss/ leap-oss ; \
  zypper -n addrepo https://download.opensuse.org/repositories/devel:/languages:/perl/SLE_15_SP5 devel-perl ; \
  sed -i 's#gpgcheck=1#gpgcheck=0#g' /etc/zypp/repos.d/*.repo ; \
  for r in /etc/zypp/repos.d/leap-oss.repo /etc/zypp/repos.d/devel-perl.repo ; do \
    grep -q '^gpgcheck=0' $r || echo 'gpgcheck=0' >> $r ; \
  done

# Build dependencies. From SLES 15.5 on, as AMD's ROCm 6 images: gcc 12, and
# libjansson4 and libnl3-200, which the host's Cray MPICH and libfabric load
# at run time (they are bind-mounted in; these libraries are not).
RUN set -eux ; \
  zypper -n refresh ; \
  zypper --no-gpg-checks -n install -y --force-resolution \
    git cmake gcc12 gcc12-c++ gcc12-fortran zlib-devel numactl awk patch tar \
    autoconf automake libtool libjson-c-devel ncurses-devel which curl \
    libjansson4 libnl3-200 ; \
  zypper clean

# ---- fragments/cray-info.docker ----
# Where the HPE Cray programming environment will be at run time. It is
# licensed: it is never shipped in the image. Steps that need it fetch the
# CPE tarball from the build-time file server and run $REMOVE_CRAY_DEPS in
# the same RUN, so no layer keeps it; at run time the host's /opt/cray and
# libcxi are bind-mounted in. Each such RUN composes the server's URL itself
# (http://127.0.0.1:${SERVER_PORT}/cpe-${CPE_VERSION}.tar): no ENV keeps it.
# This opens the `rocm` stage (sles-base.docker lists the stages): what
# needs the CPE builds on it; Python, which does not, builds on `base`.
FROM base AS rocm
ENV CPE_VERSION="24.03"
ENV LIBFABRIC_VERSION="1.15.2.0"
ENV LIBFABRIC_PATH="/opt/cray/libfabric/1.15.2.0"
ENV MPICH_PATH="/opt/cray/pe/mpich/8.1.29/ofi/crayclang/17.0"
ENV LD_LIBRARY_PATH="/opt/cray-deps:/opt/cray/libfabric/1.15.2.0/lib64:/opt/cray/pe/mpich/8.1.29/ofi/crayclang/17.0/lib:/opt/cray/pe/lib64:/opt/cray/pe/lib64/cce"
ENV REMOVE_CRAY_DEPS="rm -rf /opt/cray /opt/cray-deps /usr/lib64/libcxi.so*"

# ---- fragments/rocm.docker ----
# ROCm 6.2.0: on LUMI-G from AMD's amdgpu-install for SLES, no kernel driver;
# in the CPU example (no AMD repository here) only ROCm's directories, so the
# steps after it (the served tools that stay, amdgpu-arch compiled from a
# served source and removed) run from these same lines.
# Follows, for ROCm before 5.6 (as LUMI built its 5.4.5 image):
#   Lumi-supercomputer/LUMI-EasyBuild-containers
#   easybuild/easyconfigs/__archive__/m/mpi4py/lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4.docker
#   @ af6fb1c5ab09ad74baa161700114becd27009389
# for ROCm 5.6: sfantao/lumi-containers common/Dockerfile.rocm-5.6.1
#   @ 1a00298b8f0a0b6f248a82bd7730da17a3115382
# for ROCm 5.7 and 6.x: sfantao/LUMI-containers RecipesDocker/common/Dockerfile.rocm-<v>
#   @ 0da67382e0fb574f1273ec05042701b5e61a3a22.
# Where AMD moved since (sfantao/LUMI-containers):
# - libtbb12: the extra openSUSE repository for ROCm 6.2 (added in 2742256)
#   is gone again: 5e0fe911415730ebcd0de2f3d6e385fd447fd57c removes it from
#   every RecipesDocker/common/Dockerfile.rocm-6.2.x. Removed here too.
# - omniperf and omnitrace: RecipesDocker/common/Dockerfile.rocm-6.2.4
#   @ 0da67382e0fb574f1273ec05042701b5e61a3a22 installs both (the 6.2.0-6.2.3
#   files do not): followed for ROCm 6.2.4 and later.
# - ROCm 6.2.x for mpi4py: see the matrix note in mpi4py/recipe.yaml (1a12e9f).
ENV ROCM_RELEASE="6.2.0"
ENV ROCM_RPM="https://repo.radeon.com/amdgpu-install/6.2/sle/15.5/amdgpu-install-6.2.60200-1.noarch.rpm"

# From SLES 15.5 on, ROCm's packages resolve only against the older systemd
# libraries; then MIOpen's precompiled kernels for LUMI-G's MI250X (gfx90a).
RUN set -eux ; \
  zypper --no-gpg-checks -n install $ROCM_RPM ; \
  sed -i 's#gpgcheck=1#gpgcheck=0#g' /etc/zypp/repos.d/*.repo ; \
  zypper --no-gpg-checks -n install --oldpackage libsystemd0-249.16 libudev1-249.16 ; \
  amdgpu-install -y --no-dkms --usecase=rocm --rocmrelease=6.2.0 ; \
  zypper --no-gpg-checks -n install -y --force miopen-hip-gfx90akdb ; \
  zypper clean

ENV ROCM_PATH="/opt/rocm-6.2.0"
ENV PATH="/opt/rocm-6.2.0/bin:/opt/rocm-6.2.0/llvm/bin:$PATH"
ENV LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/opt/rocm-6.2.0/lib"

# RCCL's release build; a debug build of RCCL would override this.
ENV RCCL_DEBUG="0"

# rocminfo and rocm_agent_enumerator are replaced by the versions LUMI
# serves at build time (they must work without a GPU during builds) and
# stay: the recipe declares them as served tools at $ROCM_PATH/bin, which
# the leak scan checks byte for byte. The file server's stable arguments
# start here, before the first step that fetches.
ARG SERVER_PORT
ARG SERVED_DIGEST
RUN set -eux ; \
  cd $ROCM_PATH/bin ; \
  rm -f rocm_agent_enumerator rocminfo ; \
  curl -fsSL -o rocm_agent_enumerator "http://127.0.0.1:${SERVER_PORT}/rocm_agent_enumerator" ; \
  curl -fsSL -o rocminfo "http://127.0.0.1:${SERVER_PORT}/rocminfo" ; \
  chmod 0755 rocm_agent_enumerator rocminfo

# amdgpu-arch and offload-arch ask the GPU, and there is none at build time:
# AMD rebuilds them from a served source that answers gfx90a (8 GPUs a node);
# the source is removed in the same step.
RUN set -eux ; \
  cd $ROCM_PATH/llvm/bin ; \
  curl -fsSL -o /tmp/amdgpu-arch.cpp "http://127.0.0.1:${SERVER_PORT}/amdgpu-arch.cpp" ; \
  rm -f amdgpu-arch offload-arch ; \
  g++-12 /tmp/amdgpu-arch.cpp -DNUM_TARGETS=8 -o amdgpu-arch ; \
  g++-12 /tmp/amdgpu-arch.cpp -DNUM_TARGETS=1 -o offload-arch ; \
  rm -f /tmp/amdgpu-arch.cpp ; \
  ./amdgpu-arch ; \
  ./offload-arch

# ---- fragments/osu.docker ----
# OSU micro-benchmarks 7.2 with ROCm support in /opt/osu. MPI cannot
# run at build time, so configure is told the MPI functions exist and the
# link step names Cray MPICH, its GTL and HIP explicitly. ROCm 6's HIP
# headers need the platform said: -D__HIP_PLATFORM_AMD__=1.
# Follows sfantao/LUMI-containers RecipesDocker/common/Dockerfile.osu
#   @ 0da67382e0fb574f1273ec05042701b5e61a3a22 (ROCm 6.x), and for ROCm 5.x
#   Lumi-supercomputer/LUMI-EasyBuild-containers
#   easybuild/easyconfigs/__archive__/m/mpi4py/lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4.docker
#   @ af6fb1c5ab09ad74baa161700114becd27009389.
# Its own stage FROM rocm: OSU uses ROCm and the CPE, not Python or mpi4py,
# so it is built once per ROCm release of the matrix, not once per
# variant. components.docker copies /opt/osu into the image and sets the
# same ENV there; nothing else of this stage reaches the image. Each stage
# declares the file server's arguments it fetches with (ARGs end at FROM).
FROM rocm AS osu
ARG SERVER_PORT
ARG SERVED_DIGEST
ENV OSU_VERSION="7.2"
ENV OSU_PATH="/opt/osu"
RUN set -eux ; \
  cd / ; \
  curl -fsSL -o /cpe.tar "http://127.0.0.1:${SERVER_PORT}/cpe-${CPE_VERSION}.tar" ; \
  tar -xf /cpe.tar ; rm -f /cpe.tar ; \
  mkdir -p /opt/builds ; \
  cd /opt/builds ; \
  curl -fsS -o 'osu.tar.gz' "http://127.0.0.1:${SERVER_PORT}/sources/sha256/1a4e1f2aab0e65404b3414e23bd46616184b69b6231ce9313d9c630bd6e633c1" ; echo '1a4e1f2aab0e65404b3414e23bd46616184b69b6231ce9313d9c630bd6e633c1  osu.tar.gz' | sha256sum -c --quiet - ; \
  tar -xf osu.tar.gz ; rm -f osu.tar.gz ; \
  cd /opt/builds/osu-micro-benchmarks-7.2 ; \
  for f in MPI_Init MPI_Accumulate MPI_Get_accumulate ; do \
    sed -i "s/\$ac_cv_func_$f/yes/g" configure ; \
  done ; \
  CC=$ROCM_PATH/llvm/bin/clang CXX=$ROCM_PATH/llvm/bin/clang++ CFLAGS="-I$MPICH_PATH/include -D__HIP_PLATFORM_AMD__=1" \
    ./configure --enable-rocm --with-rocm=$ROCM_PATH --prefix=$OSU_PATH ; \
  make -j LDFLAGS="-L$MPICH_PATH/../../../gtl/lib -Wl,-rpath=$MPICH_PATH/../../../gtl/lib -L$MPICH_PATH/lib -lmpi_cray -lmpi_gtl_hsa -L$ROCM_PATH/lib -lamdhip64" install ; \
  cd / ; rm -rf /opt/builds ; \
  $REMOVE_CRAY_DEPS

# ---- fragments/checks.docker ----
# The files the recipe's checks run (its context's checks/ directory), for
# sifkit test: cupy_mpi_check.py on LUMI-G (reference §5, test 4), the
# allreduce check in the CPU example.
# Its own stage FROM scratch: the files depend on nothing the variant
# chooses, not even the OS, so they are collected once for the whole
# matrix (a stage FROM base made them once per base, and ran a chmod there
# each time). Their mode is the one the repository keeps (0755: the build
# context gives a file 0755 when it is executable, else 0644, whatever the
# checkout's umask). components.docker copies /opt/sifkit-checks into the image.
FROM scratch AS checks
COPY checks/ /opt/sifkit-checks/

# ---- fragments/miniconda.docker ----
# Miniconda in /opt/miniconda3; WITH_CONDA enters an environment by name.
# Follows sfantao/LUMI-containers RecipesDocker/common/Dockerfile.miniconda
#   @ 0da67382e0fb574f1273ec05042701b5e61a3a22 and, for ROCm 5.4.5,
#   Lumi-supercomputer/LUMI-EasyBuild-containers
#   easybuild/easyconfigs/__archive__/m/mpi4py/lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4.docker
#   @ af6fb1c5ab09ad74baa161700114becd27009389.
# The installer is a declared source (recipe.yaml sources.miniconda), served
# from sifkit's source cache by the build-time file server.
# The CPU example cannot reach Anaconda's repository: Debian's python3 in
# virtual environments at conda's place (/opt/miniconda3/envs/NAME), entered
# by a small activate that takes the environment's name as conda's does.
# This starts the stage `python` FROM base: Miniconda, the environment
# and numpy need no ROCm, so they are built once per OS and Python release;
# conda-env.docker then opens the image's stage FROM rocm and copies them
# in (sles-base.docker lists the stages).
FROM base AS python
ARG SERVER_PORT
ARG SERVED_DIGEST
RUN set -eux ; \
  curl -fsS -o '/tmp/miniconda.sh' "http://127.0.0.1:${SERVER_PORT}/sources/sha256/4b3b3b1b99215e85fd73fb2c2d7ebf318ac942a457072de62d885056556eb83e" ; echo '4b3b3b1b99215e85fd73fb2c2d7ebf318ac942a457072de62d885056556eb83e  /tmp/miniconda.sh' | sha256sum -c --quiet - ; \
  bash /tmp/miniconda.sh -b -p /opt/miniconda3 ; \
  rm -f /tmp/miniconda.sh ; \
  /opt/miniconda3/bin/conda clean -afy
ENV WITH_CONDA="source /opt/miniconda3/bin/activate base"

# ---- fragments/conda-env.docker ----
# The environment users work in; WITH_CONDA is the command they run first.
# Follows sfantao/LUMI-containers RecipesDocker/mpi4py/build-rocm-6.1.3-python-3.12-mpi4py-3.1.6.docker
#   @ 0da67382e0fb574f1273ec05042701b5e61a3a22 (and LUMI's 5.4.5 definition, the same).
# In the CPU example the environment is a virtual environment of Debian's
# python3 (see miniconda.docker), which must be the Python asked for.
RUN set -eux ; \
  . /opt/miniconda3/bin/activate base ; \
  conda create -y -n mpi4py python=3.12 ; \
  conda clean -afy
ENV WITH_CONDA="source /opt/miniconda3/bin/activate mpi4py"
RUN set -eux ; \
  $WITH_CONDA ; \
  pip install --no-cache-dir wheel setuptools numpy

# The image's own stage, FROM rocm: CuPy and mpi4py need ROCm's compilers
# and this Python. Miniconda and the environment come as the python stage
# made them, with what conda wrote in root's home (its list of
# environments); the python stage has nothing else of its own.
FROM rocm AS image
ARG SERVER_PORT
ARG SERVED_DIGEST
COPY --from=python /opt/miniconda3 /opt/miniconda3
COPY --from=python /root /root
ENV WITH_CONDA="source /opt/miniconda3/bin/activate mpi4py"

# ---- fragments/cupy.docker ----
# CuPy built for HIP, for GPU targets gfx90a, with ROCm's clang.
# Follows, for ROCm 5.x (CuPy 13.2.0 from PyPI, as LUMI built its 5.4.5 image):
#   Lumi-supercomputer/LUMI-EasyBuild-containers
#   easybuild/easyconfigs/__archive__/m/mpi4py/lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4.docker
#   @ af6fb1c5ab09ad74baa161700114becd27009389
# for ROCm 6.x (PyPI's CuPy does not import against ROCm 6: AMD's ROCm fork,
# built as a wheel against this image's ROCm):
#   sfantao/LUMI-containers RecipesDocker/common/Dockerfile.cupy
#   @ 0da67382e0fb574f1273ec05042701b5e61a3a22
# AMD's recipe clones the fork's default branch (master) at whatever commit
# is newest; here it is a declared git source pinned to one commit
# (recipe.yaml sources.cupy-rocm), cloned with its submodules by
# `sifkit fetch` and served as a tarball of the tree; the image's
# io.sifkit.sources label names the commit.
RUN set -eux ; \
  $WITH_CONDA ; \
  curl -fsS -o '/tmp/cupy-rocm.tar' "http://127.0.0.1:${SERVER_PORT}/sources/git/72ea1f14cd454f7f2aa22a0866a6bafeed632532-recursive.tar" ; \
  mkdir -p /opt/cupy-build ; \
  tar -xf /tmp/cupy-rocm.tar -C /opt/cupy-build ; rm -f /tmp/cupy-rocm.tar ; \
  cd /opt/cupy-build ; \
  export CUPY_INSTALL_USE_HIP=1 ; \
  export ROCM_HOME=$ROCM_PATH ; \
  export HCC_AMDGPU_TARGET=gfx90a ; \
  export CC=$ROCM_PATH/llvm/bin/clang ; \
  export CXX=$ROCM_PATH/llvm/bin/clang++ ; \
  python setup.py bdist_wheel ; \
  pip install --no-cache-dir dist/cupy-*.whl ; \
  cd / ; rm -rf /opt/cupy-build

# ---- fragments/mpi4py-cray.docker ----
# mpi4py 3.1.6 built against Cray MPICH with the GPU transport layer
# (GTL), which makes GPU-aware MPI work. ROCm's clang links it because its
# linker accepts the undefined symbols of the Cray libraries that are
# absent once $REMOVE_CRAY_DEPS has run.
# Follows sfantao/LUMI-containers RecipesDocker/common/Dockerfile.mpi4py
#   @ 0da67382e0fb574f1273ec05042701b5e61a3a22 (a wheel, as for every ROCm here).
# The Cray hook is the same for the CPU example: the CPE tarball (a
# stand-in there) fetched from the build-time server, unpacked, used and
# removed by $REMOVE_CRAY_DEPS in the same RUN. The example cannot reach
# GitHub or build with ROCm's clang: its mpi4py is Debian's (Open MPI).
ENV MPI4PY_VERSION="3.1.6"
RUN set -eux ; \
  $WITH_CONDA ; \
  cd / ; \
  curl -fsSL -o /cpe.tar "http://127.0.0.1:${SERVER_PORT}/cpe-${CPE_VERSION}.tar" ; \
  tar -xf /cpe.tar ; rm -f /cpe.tar ; \
  mkdir -p /opt/builds /opt/wheels ; \
  cd /opt/builds ; \
  curl -fsS -o 'mpi4py.tar.gz' "http://127.0.0.1:${SERVER_PORT}/sources/sha256/c8fa625e0f92b082ef955bfb52f19fa6691d29273d7d71135d295aa143dee6cb" ; echo 'c8fa625e0f92b082ef955bfb52f19fa6691d29273d7d71135d295aa143dee6cb  mpi4py.tar.gz' | sha256sum -c --quiet - ; \
  tar -xf mpi4py.tar.gz ; rm -f mpi4py.tar.gz ; \
  cd /opt/builds/mpi4py-3.1.6 ; \
  echo "[lumi]" >> mpi.cfg ; \
  echo "mpi_dir      = $MPICH_PATH" >> mpi.cfg ; \
  echo "mpicc        = $ROCM_PATH/llvm/bin/clang" >> mpi.cfg ; \
  echo "mpicxx       = $ROCM_PATH/llvm/bin/clang++" >> mpi.cfg ; \
  echo "libraries    = mpi_cray mpi_gtl_hsa" >> mpi.cfg ; \
  echo "library_dirs = %(mpi_dir)s/lib:%(mpi_dir)s/../../../gtl/lib:$LIBFABRIC_PATH/lib64:/opt/cray/pe/lib64:/opt/cray/pe/lib64/cce:/opt/cray-deps" >> mpi.cfg ; \
  echo "include_dirs = %(mpi_dir)s/include" >> mpi.cfg ; \
  CC=clang CXX=clang++ python setup.py build --mpi=lumi ; \
  CC=clang CXX=clang++ python setup.py bdist_wheel ; \
  cp dist/mpi4py-*.whl /opt/wheels/ ; \
  cd / ; rm -rf /opt/builds ; \
  $REMOVE_CRAY_DEPS

RUN set -eux ; \
  $WITH_CONDA ; \
  pip install --no-cache-dir /opt/wheels/mpi4py-*.whl

# ---- fragments/components.docker ----
# What the component stages built, copied into the image (the stages and
# why: sles-base.docker). /opt/osu and /opt/sifkit-checks come as they
# were made there, file for file (modes and owners kept); the ENV that
# osu.docker sets in its stage is set here again, because a stage's ENV
# does not travel with COPY --from. The CPU example's OSU stand-in
# (mpi4py-cpu/bench.docker) is a stage named osu too.
COPY --from=osu /opt/osu /opt/osu
ENV OSU_VERSION="7.2"
ENV OSU_PATH="/opt/osu"
COPY --from=checks /opt/sifkit-checks /opt/sifkit-checks

# ---- provenance (sifkit) ----
LABEL \
      org.opencontainers.image.title="lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6" \
      org.opencontainers.image.version="3.1.6" \
      io.sifkit.recipe="mpi4py" \
      io.sifkit.stem="lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6" \
      io.sifkit.definition-hash="a027c0f8980dd7cc68d297191465c95456e1a4b61caf0f27357b8ae2ca3fa626" \
      io.sifkit.version="0.0.0-test" \
      org.opencontainers.image.revision="test-revision" \
      io.sifkit.param.target="lumi-g" \
      io.sifkit.param.rocm="6.2.0" \
      io.sifkit.param.python="3.12" \
      io.sifkit.param.mpi4py="3.1.6" \
      io.sifkit.param.cupy="13.2.0" \
      io.sifkit.param.osu="7.2" \
      io.sifkit.param.gpu_targets="gfx90a" \
      io.sifkit.param.bci="15.5.36.14.13" \
      io.sifkit.param.miniconda="py312_24.5.0-0" \
      io.sifkit.param.conda_env="mpi4py" \
      io.sifkit.param.cpe="24.03" \
      io.sifkit.param.libfabric="1.15.2.0" \
      io.sifkit.param.mpich="8.1.29" \
      io.sifkit.param.crayclang="17.0" \
      io.sifkit.sources="cupy-rocm@git:72ea1f14cd454f7f2aa22a0866a6bafeed632532 miniconda@sha256:4b3b3b1b99215e85fd73fb2c2d7ebf318ac942a457072de62d885056556eb83e mpi4py@sha256:c8fa625e0f92b082ef955bfb52f19fa6691d29273d7d71135d295aa143dee6cb osu@sha256:1a4e1f2aab0e65404b3414e23bd46616184b69b6231ce9313d9c630bd6e633c1"
