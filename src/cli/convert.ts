import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { humanSize, jsonDoc, table } from './output';
import { startProgress } from './progress';
import { runCommand } from './run';
import { addStageFlags, convertSettings, signingKeyFile, type ConvertFlags } from './stage-flags';
import {
  archName,
  attestSif,
  convert,
  inspect as inspectSif,
  loadSigningKey,
  OperationError,
  reconvertAndCompare,
  terminalBlock,
  terminalLine,
} from '../index';

interface ConvertCommandFlags extends ConvertFlags {
  output?: string;
  outDir?: string;
  deterministic?: boolean;
  json?: boolean;
}

export function registerConvert(program: Command): void {
  const cmd = program
    .command('convert')
    .description('convert an image to a SIF (natively, or with apptainer/singularity)')
    .argument('<source>', 'docker-daemon:REF (an image in the engine) or docker-archive:PATH (a docker save tar)')
    .option('-o, --output <file>', 'the SIF to write (default: <stem>-dockerhash-<hash>.sif from the image labels)')
    .option('--out-dir <dir>', 'directory for the default name', '.');
  addStageFlags(cmd, 'convert')
    .option(
      '--deterministic',
      'accepted for old scripts: every conversion is reproducible (times from the image, UUID from its ID)',
    )
    .option('--json', 'print one JSON document on stdout')
    .action(async (source: string, flags: ConvertCommandFlags) => {
      process.exitCode = await runCommand(async (io) => {
        const settings = convertSettings(flags, os.totalmem());
        const keyFile = signingKeyFile(flags);
        const signingKey = keyFile ? await loadSigningKey(keyFile) : undefined;
        const dir = flags.output ? path.dirname(path.resolve(flags.output)) : path.resolve(flags.outDir ?? '.');
        const stop = startProgress(io, `converting ${terminalLine(source)}`, dir);
        const r = await convert(source, flags.output, {
          ...settings,
          signal: io.signal,
          outDir: flags.outDir,
          scanVerdict: 'warn',
          onWarning: (m) => io.stderr(`sifkit: warning: ${m}\n`),
        }).finally(stop);
        // With a key: the SBOM and provenance (from the image's labels), then the signature, as a release does.
        const attested = signingKey
          ? await attestSif(
              r.out,
              { source: r.source, imageId: r.imageId, labels: r.labels },
              { signingKey, signal: io.signal },
            )
          : undefined;
        if (io.json) io.stdout(jsonDoc({ ok: true, sif: r, ...(attested ? { attested } : {}) }));
        else {
          io.stdout(`${r.out}\n`);
          const squash =
            (r.compression ? `, ${r.compression}, mksquashfs peak ${r.mksquashfsPeakMiB} MiB` : '') +
            (r.twoPassesBecause ? `, in two passes: ${r.twoPassesBecause}` : '');
          io.stderr(
            `converted ${r.source} with ${r.backend}: ${(r.size / 1048576).toFixed(1)} MiB${r.files ? `, ${r.files} paths` : ''}${squash}, ${(r.durationMs / 1000).toFixed(1)} s\n`,
          );
        }
      }, flags);
    });

  program
    .command('verify-conversion')
    .description('prove a SIF is the conversion of an image: convert it again and compare byte for byte')
    .argument('<sif>', 'the SIF to check')
    .argument('[source]', 'docker-daemon:REF or docker-archive:PATH (default: the source the SIF names)')
    .option('--fix-perms', 'the SIF was converted with --fix-perms')
    .option('--json', 'print one JSON document on stdout')
    .action(async (sif: string, source: string | undefined, flags: { fixPerms?: boolean; json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const r = await reconvertAndCompare(sif, source, { fixPerms: flags.fixPerms, signal: io.signal });
        if (!r.identical) {
          throw new OperationError(
            'not-its-conversion',
            `${sif} is not the conversion of ${r.source}: ${r.differing} bytes differ, the first at offset ${r.firstDifference} (sizes ${r.size[0]} and ${r.size[1]})`,
            {
              hint: 'another image, other options, another sifkit version, or a SIF changed after conversion',
            },
          );
        }
        if (io.json) io.stdout(jsonDoc({ ok: true, ...r }));
        else io.stdout(`${sif}: identical to a fresh conversion of ${r.source}\n`);
      }, flags);
    });

  program
    .command('inspect')
    .description("show a SIF's header, objects, labels, environment and runscript without mounting it")
    .argument('<file>', 'a SIF file')
    .option('--json', 'print one JSON document on stdout')
    .action(async (file: string, flags: { json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const s = await inspectSif(file, { sbomDocument: Boolean(io.json) });
        if (io.json) {
          io.stdout(jsonDoc({ ok: true, ...s }));
          return;
        }
        const lines = [
          `file:      ${terminalLine(s.file)}`,
          `size:      ${humanSize(s.size)} (${s.size} bytes)`,
          `arch:      ${archName(s.arch)}`,
          `uuid:      ${s.uuid}`,
          `partition: ${s.partition ? `squashfs at ${s.partition.offset}, ${s.partition.size} bytes${s.partition.squashfsMagic ? `, ${s.partition.compression}` : ' (NO squashfs magic)'}` : 'none'}`,
          '',
          table(
            s.objects.map((o) => [
              String(o.id),
              terminalLine(o.type),
              terminalLine(o.name),
              String(o.offset),
              humanSize(o.size),
            ]),
            [
              { header: 'id', align: 'right' },
              'type',
              { header: 'name', shrink: true },
              { header: 'offset', align: 'right' },
              { header: 'size', align: 'right' },
            ],
          ).trimEnd(),
          '',
          'labels:',
          ...Object.entries(s.labels)
            .sort()
            .map(([k, v]) => `  ${terminalLine(k)}=${terminalLine(v)}`),
          '',
          'environment:',
          ...Object.entries(s.environment).flatMap(([f, body]) => [
            `  ${terminalLine(f)}:`,
            ...terminalBlock(body.trimEnd())
              .split('\n')
              .map((l) => `    ${l}`),
          ]),
          '',
          'runscript:',
          ...terminalBlock((s.runscript ?? '').trimEnd())
            .split('\n')
            .map((l) => `  ${l}`),
          ...(s.sbom
            ? [
                '',
                `sbom: ${s.sbom.format}, ${s.sbom.components.length} packages (sifkit inspect --json | jq .sbom.components)`,
              ]
            : []),
          ...(s.provenance
            ? [
                '',
                'provenance:',
                ...JSON.stringify(s.provenance, null, 2)
                  .split('\n')
                  .map((l) => `  ${l}`),
              ]
            : []),
        ];
        io.stdout(lines.join('\n') + '\n');
      }, flags);
    });
}
