/**
 * `sifkit help COMMAND` / `sifkit COMMAND --help`: commander's usage, then
 * examples that work as written on the built-in example (mpi4py-cpu) or
 * show LUMI's real values. Kept as data so a test can check that every
 * command has some.
 */
import type { Command } from 'commander';
import { runCommand } from './run';
import { InputError } from '../index';

export const EXAMPLES: Record<string, string[]> = {
  render: [
    'sifkit render mpi4py --set rocm=6.2.0 --set python=3.12 --set mpi4py=3.1.6   # Dockerfile on stdout, names on stderr',
    'sifkit render mpi4py --matrix --out defs/                                    # one directory per variant',
    'sifkit render mpi4py-cpu --json                                              # names, hash, Dockerfile as JSON',
  ],
  fetch: [
    "sifkit fetch mpi4py-cpu                                  # the example's declared sources into the cache",
    'sifkit fetch mpi4py --matrix --jobs 4 --cache /scratch/sources',
    'sifkit build mpi4py-cpu --offline                        # then build from the cache only',
  ],
  build: [
    'sifkit build mpi4py-cpu                                  # the built-in example, through the engine',
    'sifkit build mpi4py --set rocm=6.2.0 --server-files /path/to/server-files',
    'sifkit build mpi4py --matrix --jobs 2 --json',
  ],
  convert: [
    'sifkit convert docker-daemon:lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4-conda-mpi4py   # -> <stem>-dockerhash-<hash>.sif',
    'sifkit convert docker-archive:image.tar -o image.sif --fix-perms --deterministic',
    'sifkit convert docker-daemon:REF -o x.sif --compression zstd --mksquashfs-mem 512M',
  ],
  inspect: [
    'sifkit inspect lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-dockerhash-4c86d2919233.sif',
    'sifkit inspect x.sif --json | jq .labels',
  ],
  test: [
    'sifkit test lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4-conda-mpi4py --runner local',
    'sifkit test x.sif --runner slurm --partition standard-g --root /appl/local/containers',
    'sifkit test x.sif --check osu-latency --no-gate',
  ],
  report: [
    'sifkit report --out report/                  # report/index.html',
    'sifkit report --root /appl/local/containers --json',
  ],
  init: [
    'sifkit init demo-out/containers            # a new, empty container tree',
    'sifkit release mpi4py-cpu --root new-tree --init   # the same, as part of a release',
  ],
  stage: [
    'sifkit stage x.sif --root demo-out/containers       # needs a passing sifkit test run',
    'sifkit stage x.sif --untested --archive x.tar',
  ],
  promote: [
    'sifkit promote NAME.sif --to all --root demo-out/containers',
    'sifkit promote NAME.sif --to sif-images --rollback     # move the link back to an older image',
  ],
  status: [
    'sifkit status --root demo-out/containers',
    'sifkit status --where rocm=6.2.0 --where python=3.12',
    "sifkit status --stem 'lumi-mpi4py-rocm-6*' --json",
  ],
  verify: [
    'sifkit verify --root demo-out/containers',
    'sifkit verify --deep --repair',
    "sifkit verify --deep --reconvert --work-dir /scratch/tmp   # prove each SIF is its image's conversion",
  ],
  sign: [
    'sifkit sign x.sif --key build-key.pem                 # DSSE (ed25519, ECDSA, RSA PEM keys)',
    'sifkit sign x.sif --key secret.asc                    # PGP clear-signed, as apptainer sign does',
    'SIFKIT_SIGNING_KEY=build-key.pem sifkit sign x.sif --json',
  ],
  'verify-signature': [
    'sifkit verify-signature x.sif --key build-key.pub.pem',
    'sifkit verify-signature x.sif --cert signer.crt --ca-pool lumi-ca.pem',
    'sifkit verify-signature x.sif --keyring pubring.asc --group 1 --json',
  ],
  'verify-conversion': [
    'sifkit verify-conversion demo-out/sif/NAME.sif                 # against the source the SIF names',
    'sifkit verify-conversion x.sif docker-archive:x.tar --json',
  ],
  jobs: [
    'sifkit jobs --out /scratch/$PROJECT/sif             # queued/running/done per variant',
    'sifkit jobs --out /scratch/$PROJECT/sif --cancel',
  ],
  retire: [
    'sifkit retire --easyconfigs ~/LUMI-EasyBuild-containers   # the plan; changes nothing',
    'sifkit retire --apply',
    'sifkit retire --purge --grace-days 30',
  ],
  restore: ['sifkit restore lumi-mpi4py-rocm-5.4.5-python-3.10-mpi4py-3.1.4-dockerhash-0123456789ab.sif'],
  easyconfig: [
    'sifkit easyconfig NAME.sif --root demo-out/containers --out eb/   # .eb and .docker (USER.md too when the recipe has a USER.md)',
    'sifkit easyconfig x.sif --date 20241007',
    'sifkit easyconfig x.sif --key build.pub.pem --out eb/   # refused (exit 3, nothing written) unless this key signed it',
  ],
  module: [
    'sifkit module NAME.sif --root demo-out/containers --out ~/lumi-test   # then: module use ~/lumi-test/modules',
  ],
  publish: [
    'GITHUB_TOKEN=... sifkit publish NAME.sif                  # a PR to Lumi-supercomputer/LUMI-EasyBuild-containers',
    'GITHUB_TOKEN=... sifkit publish NAME.sif --repo OWNER/NAME --archive old.eb',
  ],
  release: [
    'sifkit release mpi4py-cpu --root demo-out/containers --out demo-out/sif --init   # what npm run demo runs',
    'sifkit release mpi4py --matrix --jobs 4 --build-jobs 2 --runner slurm',
  ],
  run: ['sifkit run release --recipe mpi4py --matrix --jobs 4', 'sifkit run retire --recipe mpi4py'],
  host: [
    'sifkit host snapshot --module $EBROOTMPI4PY/../../modules/mpi4py/3.1.6.lua -o lumi.json   # on a node of the system',
    'sifkit host snapshot --bind /opt/cray,/usr/lib64/libcxi.so.1 -o lumi.json',
    'sifkit host record lumi.json --name lumi-24.03 --root demo-out/containers   # promote then refuses images that break on it',
  ],
  compat: [
    'sifkit compat demo-out/sif/NAME.sif --host lumi.json',
    'sifkit compat docker-daemon:lumi/lumi-mpi4py-cpu:python-3.11-mpi4py-3.1.4-conda-mpi4py --host lumi.json --mpi-level full',
    'sifkit compat --root demo-out/containers --host next.json   # which promoted images the new host would break',
  ],
  help: [
    'sifkit help status                # the same as: sifkit status --help',
    'sifkit help                       # every command',
  ],
  completion: [
    'source <(sifkit completion bash)                        # this shell',
    'sifkit completion bash > /etc/bash_completion.d/sifkit   # every bash',
    'sifkit completion zsh > "${fpath[1]}/_sifkit"             # zsh, then restart it',
  ],
};

/** Adds each command's examples after its usage in `help COMMAND` and `COMMAND --help`. */
export function addExamples(program: Command): void {
  for (const cmd of program.commands) {
    const lines = EXAMPLES[cmd.name()];
    if (lines) cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
  }
  program.addHelpText('after', '\nRun sifkit help COMMAND for its options and examples.\n');
}

/**
 * `sifkit help [COMMAND]` in place of commander's own, which answers an
 * unknown command with the whole usage on stderr and no word of what was
 * wrong.
 */
export function registerHelp(program: Command): void {
  program.helpCommand(false);
  program
    .command('help')
    .description('show the options and examples of a command')
    .argument('[command...]', 'the command (and subcommand: help host snapshot)')
    .action(async (names: string[]) => {
      process.exitCode = await runCommand(async () => {
        if (!names.length) return void program.outputHelp();
        let cmd = program;
        for (const name of names) {
          const sub = cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
          if (!sub)
            throw new InputError('unknown-command', `no command ${JSON.stringify(names.join(' '))}`, {
              hint: `commands: ${cmd.commands.map((c) => c.name()).join(', ')}`,
            });
          cmd = sub;
        }
        cmd.outputHelp();
      });
    });
}
