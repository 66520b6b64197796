import type { Command } from 'commander';
import * as path from 'node:path';
import { collect, jsonDoc, table } from './output';
import { runCommand } from './run';
import { ROOT_HELP } from './tree';
import {
  bindsOf,
  type BindSource,
  type CompatReport,
  checkCompat,
  connectEngine,
  DATA_BINDS,
  ExitCode,
  firstBreak,
  InputError,
  openTree,
  parseCompatImage,
  parseMpiLevel,
  readSnapshot,
  recordHost,
  resolveRoot,
  takeSnapshot,
  terminalLine,
  treeCompat,
  writeFileAtomic,
} from '../index';

interface SnapshotFlags {
  bind?: string;
  module?: string;
  easyconfig?: string;
  installdir?: string;
  skip?: string;
  output?: string;
  json?: boolean;
}

function bindSource(flags: SnapshotFlags): BindSource {
  const given = [flags.bind, flags.module, flags.easyconfig].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new InputError('bad-usage', 'give exactly one of --bind PATHS, --module FILE.lua, --easyconfig FILE.eb');
  if (flags.bind !== undefined) return { kind: 'bind', list: flags.bind };
  if (flags.module !== undefined) return { kind: 'module', file: flags.module };
  return { kind: 'easyconfig', file: flags.easyconfig!, installdir: flags.installdir };
}

/** One line per break, for people: the file, what it needs, where it looked. */
/**
 * Rows for people. Every value is the snapshot's or the image's data (a file name, a SONAME, a symbol
 * version), so each cell goes through the terminal's one emitter: no escape sequence or separator
 * in a snapshot moves the cursor or splits a row.
 */
function breakRows(r: CompatReport, host: string): string[][] {
  return rawBreakRows(r, host).map((row) => row.map(terminalLine));
}

function rawBreakRows(r: CompatReport, host: string): string[][] {
  const rows = r.breaks.map((b) => [
    r.image,
    host,
    `${b.file} (${b.fileFrom})`,
    b.library,
    b.kind === 'missing-version' ? b.version! : b.provider ? `cannot load ${b.provider}` : 'not found',
    b.alsoWithoutHost ? 'broken too' : '-',
  ]);
  for (const m of r.mpi.filter((x) => !x.ok))
    rows.push([r.image, host, `${m.host.path} (host)`, m.library, `${m.level}: ${m.why}`, '-']);
  return rows.length
    ? rows
    : [
        [
          r.image,
          host,
          '-',
          '-',
          `compatible (${r.objects} objects, ${r.hostLoaded.length} host libraries loaded)`,
          '-',
        ],
      ];
}

/** Where each break is: the file (image or host), the library, the missing version; the provider's path is in --json. */
const BREAK_COLUMNS = [
  { header: 'image', group: true },
  { header: 'host', shrink: true },
  { header: 'file', shrink: true },
  'library',
  { header: 'missing', shrink: true },
  'without host',
];

export function registerCompat(program: Command): void {
  const host = program
    .command('host')
    .description('what the hosts a tree serves bind into containers: snapshot one, record it in the tree');
  host
    .command('snapshot')
    .description("record every shared library a module's binds bring into a container, and this host's glibc")
    .option('--bind <paths>', 'a bind list as singularity -B takes it: src[:dst[:ro]],...')
    .option('--module <file>', 'an Lmod module: its SINGULARITY_BIND (and SINGULARITYENV_LD_LIBRARY_PATH)')
    .option('--easyconfig <file>', 'an EasyConfig: the SINGULARITY_BIND of its modextravars')
    .option('--installdir <dir>', 'with --easyconfig: what %(installdir)s stands for')
    .option(
      '--skip <paths>',
      `container paths whose files are not walked (user data), comma-separated`,
      DATA_BINDS.join(','),
    )
    .option('-o, --output <file>', 'write the snapshot there (atomically) instead of stdout')
    .option('--json', 'print the snapshot on stdout (what it does without -o): it is one JSON document')
    .action(async (flags: SnapshotFlags) => {
      process.exitCode = await runCommand(async (io) => {
        const { binds, ldLibraryPath, from } = await bindsOf(bindSource(flags));
        const snap = await takeSnapshot(binds, {
          from,
          ldLibraryPath,
          skip: (flags.skip ?? '').split(',').filter(Boolean),
          signal: io.signal,
          warn: (l) => io.stderr(`sifkit: warning: ${terminalLine(l)}\n`),
        });
        const text = JSON.stringify(snap, null, 1) + '\n';
        if (flags.output) await writeFileAtomic(path.resolve(flags.output), text);
        else io.stdout(text);
        const libs = snap.binds.reduce((n, b) => n + b.files.filter((f) => f.elf).length, 0);
        io.stderr(
          `${terminalLine(snap.host)}: glibc up to GLIBC_${snap.glibc?.version ?? '(not found)'}; ${snap.binds.length} binds (${snap.binds.filter((b) => b.kind === 'missing').length} missing here, ${snap.binds.filter((b) => b.skipped).length} user data), ${libs} shared libraries${flags.output ? ` -> ${flags.output}` : ''}\n`,
        );
      });
    });
  host
    .command('record')
    .description('record a host snapshot the tree promises to serve (promote then refuses images that break on it)')
    .argument('<snapshot>', 'a file from sifkit host snapshot')
    .option('--name <name>', "the name it is kept under (default: the snapshot's host name)")
    .option('--root <dir>', ROOT_HELP)
    .option('--json', 'print one JSON document on stdout')
    .action(async (file: string, flags: { name?: string; root?: string; json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const snap = await readSnapshot(path.resolve(file));
        const tree = await openTree(resolveRoot(flags.root), false);
        const r = await recordHost(tree, snap, flags.name, io.signal);
        if (io.json) io.stdout(jsonDoc({ ok: true, recorded: r }));
        else io.stdout(`${r.replaced ? 'replaced' : 'recorded'} ${r.path}\n`);
      }, flags);
    });

  program
    .command('compat')
    .description(
      'would these images work with what these hosts bind in? Every needed library found, every symbol version defined',
    )
    .argument(
      '[image]',
      'a SIF, or docker-daemon:REF (an image in the engine); with --root, every promoted image of the tree instead',
    )
    .requiredOption('--host <snapshot>', 'a host snapshot (repeatable)', collect)
    .option(
      '--mpi-level <level>',
      "MPI libraries against the image's own copies: major, full or strict (Sarus's levels)",
      'major',
    )
    .option('--root <dir>', 'check every promoted image of this tree (sif-images links, easybuild-sif-images)')
    .option('--easyconfigs <dir>', 'with --root: an EasyConfig checkout, to name the EasyConfigs of each image')
    .option('--json', 'print one JSON document on stdout')
    .action(
      async (
        image: string | undefined,
        flags: { host: string[]; mpiLevel: string; root?: string; easyconfigs?: string; json?: boolean },
      ) => {
        process.exitCode = await runCommand(async (io) => {
          if (Boolean(image) === Boolean(flags.root))
            throw new InputError('bad-usage', 'give an IMAGE or --root DIR (not both)');
          const mpiLevel = parseMpiLevel(flags.mpiLevel);
          const hostFiles = flags.host.map((h) => path.resolve(h));
          const hosts = await Promise.all(hostFiles.map((h) => readSnapshot(h)));
          const hostNames = hosts.map((h, i) => `${h.host} (${path.basename(hostFiles[i])})`);
          // Shown to people (the JSON keeps the snapshot's own strings): through the terminal's emitter.
          const names = hostNames.map(terminalLine);
          const opts = {
            mpiLevel,
            signal: io.signal,
            engine: () => connectEngine(io.signal),
            warn: (l: string) => io.stderr(`sifkit: warning: ${terminalLine(l)}\n`),
          };
          if (image) {
            const reports = await checkCompat(parseCompatImage(image), hosts, opts);
            const ok = reports.every((r) => r.compatible);
            if (io.json) io.stdout(jsonDoc({ ok, reports }));
            else {
              io.stdout(
                table(
                  reports.flatMap((r, i) => breakRows(r, hostNames[i])),
                  BREAK_COLUMNS,
                ),
              );
              for (const [i, r] of reports.entries())
                io.stderr(
                  `${names[i]}: newest glibc symbol version in the image GLIBC_${terminalLine(r.glibc ?? '(none)')}, on the host GLIBC_${terminalLine(r.host.glibc ?? '(unknown)')}; ${r.compatible ? 'compatible' : `${r.breaks.length + r.mpi.filter((m) => !m.ok).length} breaks`}\n`,
                );
            }
            return ok ? ExitCode.ok : ExitCode.failed;
          }
          const tree = await openTree(resolveRoot(flags.root), false);
          const rows = await treeCompat(tree, hosts, {
            ...opts,
            easyconfigs: flags.easyconfigs ? path.resolve(flags.easyconfigs) : undefined,
            onImage: (n) => io.stderr(`checking ${terminalLine(n)}\n`),
          });
          const breaking = rows.filter((r) => r.error || r.reports.some((x) => !x.compatible));
          if (io.json)
            io.stdout(
              jsonDoc({
                ok: breaking.length === 0,
                root: tree.root,
                hosts: hostNames,
                images: rows.map((r) => ({
                  name: r.name,
                  path: r.path,
                  links: r.links,
                  easyconfigs: r.easyconfigs,
                  sameAs: r.sameAs,
                  error: r.error,
                  results: r.reports.map((x, i) => ({
                    host: hostNames[i],
                    compatible: x.compatible,
                    breaks: x.breaks,
                    mpi: x.mpi,
                  })),
                })),
              }),
            );
          else {
            io.stdout(
              table(
                rows.flatMap((r) =>
                  (r.error
                    ? [[r.name, '-', 'error', r.error, r.links.join(', ') || '-']]
                    : r.reports.map((x, i) => [
                        r.name,
                        names[i],
                        x.compatible ? 'works' : 'breaks',
                        x.compatible ? '-' : firstBreak(x),
                        [...r.links, ...r.easyconfigs].join(', ') || '-',
                      ])
                  ).map((row) => row.map((c, j) => (j === 1 ? c : terminalLine(c)))),
                ),
                [
                  { header: 'image', group: true },
                  'host',
                  { header: 'result', color: (c: string) => (c === 'works' ? ('green' as const) : ('red' as const)) },
                  { header: 'first break', shrink: true },
                  { header: 'links and EasyConfigs', shrink: true },
                ],
              ),
            );
            io.stdout(
              `${rows.length - breaking.length} of ${rows.length} promoted images work on ${names.join(', ')}; ${breaking.length} would break\n`,
            );
          }
          return breaking.length ? ExitCode.failed : ExitCode.ok;
        }, flags);
      },
    );
}
