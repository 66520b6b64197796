import type { Command } from 'commander';
import { convert, parseBackend } from '../convert/convert';
import { COMPRESSIONS, DEFAULT_MKSQUASHFS_MEM, parseCompression, parseMem } from '../convert/squash-options';
import { inspectSif } from '../sif/inspect';
import { jsonDoc, table } from './output';
import { runCommand } from './run';
import { InputError } from '../errors';

interface ConvertFlags {
  output?: string;
  outDir?: string;
  backend?: string;
  fixPerms?: boolean;
  deterministic?: boolean;
  compression?: string;
  mksquashfsMem?: string;
  processors?: string;
  json?: boolean;
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert an image to a SIF (natively, or with apptainer/singularity)')
    .argument('<source>', 'docker-daemon:REF (an image in the engine) or docker-archive:PATH (a docker save tar)')
    .option('-o, --output <file>', 'the SIF to write (default: <stem>-dockerhash-<hash>.sif from the image labels)')
    .option('--out-dir <dir>', 'directory for the default name', '.')
    .option('--backend <name>', 'native, apptainer or singularity', 'native')
    .option('--fix-perms', 'give the owner rwx on directories and rw on files, as singularity build --fix-perms')
    .option('--deterministic', 'nil UUID and fixed times: the same image gives the same bytes')
    .option('--compression <name>', `squashfs compressor, ${COMPRESSIONS.join(', ')} (only gzip is read by every apptainer and singularity)`, 'gzip')
    .option('--mksquashfs-mem <size>', 'memory mksquashfs may use, e.g. 512M or 2G', DEFAULT_MKSQUASHFS_MEM)
    .option('--processors <n>', 'CPUs mksquashfs may use (default: every online CPU; a Slurm job passes its --cpus-per-task)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (source: string, flags: ConvertFlags) => {
      process.exitCode = await runCommand(async (io) => {
        const backend = parseBackend(flags.backend ?? 'native');
        const compression = parseCompression(flags.compression ?? 'gzip');
        const mem = parseMem(flags.mksquashfsMem ?? DEFAULT_MKSQUASHFS_MEM);
        const processors = flags.processors === undefined ? undefined : Number(flags.processors);
        if (processors !== undefined && (!Number.isInteger(processors) || processors < 1 || processors > 1024)) throw new InputError('bad-processors', `--processors ${flags.processors} is not a whole number from 1 to 1024`);
        if (backend !== 'native' && compression !== 'gzip') throw new InputError('bad-compression', `--compression is for the native backend; ${backend} build always writes gzip`);
        const r = await convert(source, flags.output, { backend, fixPerms: flags.fixPerms, deterministic: flags.deterministic, signal: io.signal, outDir: flags.outDir, compression, mem, processors });
        if (io.json) io.stdout(jsonDoc({ ok: true, sif: r }));
        else {
          io.stdout(`${r.out}\n`);
          const squash = r.compression ? `, ${r.compression}, mksquashfs peak ${r.mksquashfsPeakMiB} MiB` : '';
          io.stderr(`converted ${r.source} with ${r.backend}: ${(r.size / 1048576).toFixed(1)} MiB${r.files ? `, ${r.files} paths` : ''}${squash}, ${(r.durationMs / 1000).toFixed(1)} s\n`);
        }
      }, flags);
    });

  program
    .command('inspect')
    .description("show a SIF's header, objects, labels, environment and runscript without mounting it")
    .argument('<file>', 'a SIF file')
    .option('--json', 'print one JSON document on stdout')
    .action(async (file: string, flags: { json?: boolean }) => {
      process.exitCode = await runCommand(async (io) => {
        const s = await inspectSif(file);
        if (io.json) {
          io.stdout(jsonDoc({ ok: true, ...s }));
          return;
        }
        const lines = [
          `file:      ${s.file}`,
          `size:      ${s.size} bytes`,
          `arch:      ${s.arch}`,
          `uuid:      ${s.uuid}`,
          `partition: ${s.partition ? `squashfs at ${s.partition.offset}, ${s.partition.size} bytes${s.partition.squashfsMagic ? `, ${s.partition.compression}` : ' (NO squashfs magic)'}` : 'none'}`,
          '',
          table(s.objects.map((o) => [String(o.id), o.type, o.name, String(o.offset), String(o.size)]), ['id', 'type', 'name', 'offset', 'size']).trimEnd(),
          '',
          'labels:',
          ...Object.entries(s.labels).sort().map(([k, v]) => `  ${k}=${v}`),
          '',
          'environment:',
          ...Object.entries(s.environment).flatMap(([f, body]) => [`  ${f}:`, ...body.trimEnd().split('\n').map((l) => `    ${l}`)]),
          '',
          'runscript:',
          ...(s.runscript ?? '').trimEnd().split('\n').map((l) => `  ${l}`),
        ];
        io.stdout(lines.join('\n') + '\n');
      }, flags);
    });
}
