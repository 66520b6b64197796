/**
 * Every way sifkit's mpi4py image, module and tests knowingly differ from
 * what LUMI and AMD publish, with the reason: the one list (issue 18).
 * Sources: Lumi-supercomputer/LUMI-EasyBuild-containers @ af6fb1c5ab09,
 * sfantao/LUMI-containers @ 0da67382e0fb, sfantao/lumi-containers @ 1a00298b8f0a.
 * Entries of kind `easyconfig` are checked field by field by
 * test/unit/lumi-golden.test.ts: a listed field must really differ.
 */
export type LumiVariant = '6.2.0' | '5.4.5';

export interface Difference {
  kind: 'easyconfig' | 'image' | 'tests';
  /** The EasyConfig field, or what part of the image or tests. */
  what: string;
  /** Which of LUMI's released variants it concerns. */
  variants: LumiVariant[];
  reason: string;
}

const BOTH: LumiVariant[] = ['6.2.0', '5.4.5'];

export const DIFFERENCES: Difference[] = [
  {
    kind: 'easyconfig',
    what: 'whatis',
    variants: BOTH,
    reason: "LUMI's line is prose; ours says the same in our own words (same shape: one 'Description: ...' entry)",
  },
  {
    kind: 'easyconfig',
    what: 'local_docker',
    variants: BOTH,
    reason:
      'sifkit ships the Docker definition in share/docker-defs as the seed promises; LUMI has these lines commented out',
  },
  {
    kind: 'easyconfig',
    what: 'sources',
    variants: BOTH,
    reason:
      "the definition file is a second source; 'cp -L' copies the image when a tree (or a development clone made by link_images.sh) holds a symbolic link",
  },
  {
    kind: 'easyconfig',
    what: 'files_to_copy',
    variants: BOTH,
    reason: 'the definition file goes to share/docker-defs (see local_docker)',
  },
  {
    kind: 'easyconfig',
    what: 'postinstallcmds',
    variants: BOTH,
    reason:
      "the same two scripts with our comments; 'chmod a+rx' so other users of a shared installation can read them; they are installed and run by test/integration/publish.test.ts",
  },
  {
    kind: 'easyconfig',
    what: 'modluafooter',
    variants: [],
    reason: 'only the comment and spacing differ; the create_container_vars call is compared argument by argument',
  },
  {
    kind: 'easyconfig',
    what: 'SINGULARITY_BIND',
    variants: ['6.2.0'],
    reason:
      "LUMI's 6.2.0 module does not bind /usr/lib64/libjansson.so.4 while its test job does; sifkit binds what the tests bind (LUMI's 5.4.5 module does too)",
  },
  {
    kind: 'easyconfig',
    what: 'versionsuffix',
    variants: ['5.4.5'],
    reason:
      "LUMI's 20240207 file keeps the suffix date 20231110 of the file it replaced; sifkit derives the suffix from the file's date",
  },
  {
    kind: 'easyconfig',
    what: 'sanity_check_paths',
    variants: ['5.4.5'],
    reason:
      "LUMI's 5.4.5 module predates start-shell and checks only the runscripts directory; sifkit checks both scripts, as LUMI's 6.2.0 module does",
  },
  ...['local_version', 'local_rocm_version', 'local_python_version', 'local_date', 'local_hash'].map(
    (what): Difference => ({
      kind: 'easyconfig',
      what,
      variants: ['5.4.5'],
      reason: "LUMI's 5.4.5 EasyConfig spells the values out; sifkit writes the local variables LUMI's 6.2.0 one has",
    }),
  ),
  {
    kind: 'image',
    what: 'WITH_CONDA',
    variants: ['6.2.0'],
    reason:
      "AMD's current recipes end with an activated environment and WITH_CONDA=true; the seed page LUMI's users read says WITH_CONDA activates the mpi4py environment, which sifkit keeps",
  },
  {
    kind: 'image',
    what: 'licensed files',
    variants: BOTH,
    reason:
      "AMD now bind-mounts them from a BuildKit context (Docker's classic builder over the Engine API has no mounts); sifkit serves them on loopback to root-owned sockets only (the kernel's socket table says who asks), with stable SERVER_PORT/SERVED_DIGEST arguments, and proves them absent from every layer, the config and the history (leak scan)",
  },
  {
    kind: 'image',
    what: 'CPE_URL',
    variants: BOTH,
    reason:
      "LUMI's images keep the file server's URL in ENV CPE_URL, visible to every user of the image; sifkit composes the URL inside each RUN that fetches, so no ENV keeps it",
  },
  {
    kind: 'image',
    what: 'cupy fork revision',
    variants: ['6.2.0'],
    reason:
      "AMD clones the fork's default branch, unpinned; sifkit pins it to a commit of that branch (recipe.yaml sources.cupy-rocm), builds from the cached tree and names the commit in the io.sifkit.sources label",
  },
  {
    kind: 'image',
    what: 'rocminfo and rocm_agent_enumerator fetch',
    variants: BOTH,
    reason:
      "AMD copies both from its bind mount in a loop ('for i in ...; cp /h/$i'); sifkit fetches each by name in one RUN, so the render-time check can tell which served files are fetched, and declares both as served tools that stay at $ROCM_PATH/bin (checked byte for byte by the leak scan)",
  },
  {
    kind: 'image',
    what: 'ROCm 6.2 in the matrix',
    variants: ['6.2.0'],
    reason:
      'AMD builds its mpi4py recipe (and CuPy) only up to ROCm 6.1.3 since sfantao/LUMI-containers 1a12e9f; sifkit keeps the ROCm 6.2.0 rows because LUMI released this image (20241007), marked in recipe.yaml, and drops the 6.2.4 row',
  },
  {
    kind: 'image',
    what: 'mpi4py install',
    variants: ['5.4.5'],
    reason:
      "LUMI's 5.4.5 image ran 'setup.py install'; sifkit builds a wheel and installs it for every ROCm, as AMD's 6.x recipes do: the same mpi4py in the environment",
  },
  {
    kind: 'image',
    what: 'ROCm 5.6 install',
    variants: [],
    reason: "AMD's 5.6.1 recipe ignores amdgpu-install's exit status ('|| true'); sifkit lets a failure fail the build",
  },
  {
    kind: 'image',
    what: 'LD_LIBRARY_PATH and REMOVE_CRAY_DEPS',
    variants: ['6.2.0'],
    reason:
      "keep /opt/cray-deps as LUMI's 5.4.5 image has it; harmless where the directory does not exist (AMD's 24.03 header dropped it)",
  },
  {
    kind: 'tests',
    what: 'libjansson binding',
    variants: ['6.2.0'],
    reason:
      "AMD's current test job (lumi-containers-transfer.sh @ 0da6738) no longer binds /usr/lib64/libjansson.so.4, the ROCm 6 image having libjansson4; sifkit's test job and module both bind the host's, which Cray MPICH was built against, so tests and users' jobs see the same library",
  },
  {
    kind: 'tests',
    what: 'singularity',
    variants: BOTH,
    reason:
      'singularity cannot be installed on the machine sifkit is developed on: the smoke test and start-shell run against the CPU example with singularity exec stood in for by docker run (test/support/singularity-via-docker.sh)',
  },
  {
    kind: 'tests',
    what: 'OSU result comparison',
    variants: BOTH,
    reason: 'LUMI only prints results into a log; sifkit judges each check and keeps the figures',
  },
];
