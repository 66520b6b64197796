import * as path from 'node:path';
import type { Command } from 'commander';
import { collect, jsonDoc, table, humanDuration, humanSize } from './output';
import { runRecipePipeline, throwFirstVariantError } from './pipeline-run';
import { runCommand } from './run';
import { addStageFlags, requireDirectory } from './stage-flags';

interface BuildFlags {
  set?: string[];
  matrix?: boolean;
  serverFiles?: string;
  rebuild?: boolean;
  sourceCache?: string;
  offline?: boolean;
  logDir?: string;
  json?: boolean;
  jobs?: string;
}

export function registerBuild(program: Command): void {
  const cmd = program
    .command('build')
    .description('build a recipe variant through the Docker Engine API, serving licensed files and proving them absent')
    .argument('<recipe>', 'recipe name (in docker-defs/) or path')
    .option('--set <name=value>', 'set a parameter (repeatable)', collect)
    .option('--matrix', "build every variant of the recipe's build matrix");
  addStageFlags(cmd, 'build')
    .option('--jobs <n>', 'variants built at once', '1')
    .option('--json', 'print one JSON document on stdout')
    .action(async (recipe: string, flags: BuildFlags) => {
      process.exitCode = await runCommand(async (io) => {
        if (flags.serverFiles !== undefined) await requireDirectory(flags.serverFiles, '--server-files');
        const ctx = await runRecipePipeline('build', recipe, flags, io, {
          serverFiles: flags.serverFiles ? path.resolve(flags.serverFiles) : undefined,
          rebuild: flags.rebuild,
          sourceCache: flags.sourceCache ? path.resolve(flags.sourceCache) : undefined,
          offline: flags.offline,
          logDir: path.resolve(flags.logDir ?? '.sifkit/logs'),
        });
        throwFirstVariantError(ctx);
        // No variant failed (thrown above), so each has its build.
        const records = ctx.variants.flatMap((v) => (v.results.build ? [v.results.build] : []));
        if (io.json) io.stdout(jsonDoc({ ok: true, images: records }));
        else
          io.stdout(
            table(
              records.map((r) => [
                r.tag,
                r.dockerhash,
                r.reused ? 'reused' : 'built',
                humanSize(r.size),
                humanDuration(r.durationMs),
                r.logPath ?? '',
              ]),
              [
                { header: 'image', shrink: true },
                'dockerhash',
                'how',
                { header: 'size', align: 'right' },
                { header: 'time', align: 'right' },
                { header: 'log', shrink: true },
              ],
            ),
          );
      }, flags);
    });
}
