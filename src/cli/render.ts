import * as path from 'node:path';
import type { Command } from 'commander';
import { collect, jsonDoc, table } from './output';
import { runRecipePipeline, throwFirstVariantError } from './pipeline-run';
import { runCommand } from './run';
import { type BuildJson, makeOutputDir, type RenderedVariant, writeInside } from '../index';

interface RenderFlags {
  set?: string[];
  matrix?: boolean;
  out?: string;
  json?: boolean;
  date?: string;
}

export function renderMetadata(r: RenderedVariant): BuildJson {
  return {
    recipe: r.recipe,
    parameters: r.values,
    names: r.names,
    definitionHash: r.definitionHash,
    buildArgs: r.runtimeArgs,
    labels: r.labels,
    lintWarnings: r.warnings,
  };
}

/** One variant's files in `out` (in `out/<stem>/` with --matrix), each checked to land inside it. */
async function writeOut(out: string, sub: string, r: RenderedVariant): Promise<void> {
  const dir = await makeOutputDir(out, '--out');
  await writeInside(dir, sub ? `${sub}/Dockerfile` : 'Dockerfile', r.dockerfile);
  await writeInside(dir, sub ? `${sub}/build.json` : 'build.json', jsonDoc(renderMetadata(r)));
}

export function registerRender(program: Command): void {
  program
    .command('render')
    .description('render the Docker definition of a recipe, with its names and definition hash')
    .argument('<recipe>', 'recipe name (in docker-defs/) or path')
    .option('--set <name=value>', 'set a parameter (repeatable)', collect)
    .option('--matrix', "render every variant of the recipe's build matrix")
    .option('--out <dir>', 'write Dockerfile and build.json there (one directory per variant with --matrix)')
    .option('--date <YYYYMMDD>', 'date in the EasyConfig name (default: today)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (recipe: string, flags: RenderFlags) => {
      process.exitCode = await runCommand(async (io) => {
        const ctx = await runRecipePipeline('render', recipe, flags, io);
        throwFirstVariantError(ctx);
        const rendered = ctx.variants.map((v) => v.rendered!);
        if (flags.out) {
          for (const r of rendered) await writeOut(flags.out, flags.matrix ? r.names.stem : '', r);
        }
        if (io.json) {
          const docs = rendered.map((r) => ({ ...renderMetadata(r), dockerfile: r.dockerfile }));
          io.stdout(jsonDoc(flags.matrix ? { ok: true, variants: docs } : { ok: true, ...docs[0] }));
        } else if (!flags.out && !flags.matrix) {
          const r = rendered[0];
          io.stdout(r.dockerfile);
          io.stderr(
            `sifkit: ${r.names.stem}\n  tag        ${r.names.tag}\n  easyconfig ${r.names.easyconfig}\n  hash       ${r.definitionHash}\n`,
          );
        } else {
          io.stdout(
            table(
              rendered.map((r) => [
                r.names.stem,
                r.definitionHash.slice(0, 16),
                flags.out ? path.join(flags.out, flags.matrix ? r.names.stem : '') : '',
              ]),
              [{ header: 'variant', shrink: true }, 'definition hash', { header: 'written to', shrink: true }],
            ),
          );
        }
      }, flags);
    });
}
