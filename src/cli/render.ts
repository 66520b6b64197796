import * as path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { collect, jsonDoc, table } from './output';
import { runRecipePipeline, throwFirstVariantError } from './pipeline-run';
import { runCommand } from './run';
import { type BuildJson, makeOutputDir, refuseOverwrite, type RenderedVariant, writeInside } from '../index';

interface RenderFlags {
  set?: string[];
  matrix?: boolean;
  out?: string;
  json?: boolean;
  date?: string;
  force?: boolean;
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

/** What a build.json in --out must hold to be taken as a render of a variant (else it is someone else's file). */
const renderedFileSchema = z.looseObject({
  names: z.looseObject({ stem: z.string() }),
  parameters: z.record(z.string(), z.string()),
});

/** The variant (stem and parameters) a Dockerfile or build.json already in --out was rendered for, when it says. */
export function renderedFor(existing: string): { stem: string; params: Record<string, string> } | undefined {
  const label = /io\.sifkit\.stem="([^"\n]*)"/.exec(existing);
  if (label) {
    const params = [...existing.matchAll(/io\.sifkit\.param\.([A-Za-z0-9_]+)="([^"\n]*)"/g)];
    return { stem: label[1], params: Object.fromEntries(params.map((m) => [m[1], m[2]])) };
  }
  try {
    const doc = renderedFileSchema.safeParse(JSON.parse(existing));
    return doc.success ? { stem: doc.data.names.stem, params: doc.data.parameters } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether an existing render is this variant's own: the same stem and the same parameter values. */
function isOwn(existing: string, r: RenderedVariant): boolean {
  const was = renderedFor(existing);
  if (!was || was.stem !== r.names.stem) return false;
  const keys = new Set([...Object.keys(was.params), ...Object.keys(r.values)]);
  return [...keys].every((k) => was.params[k] === r.values[k]);
}

/**
 * The variants' files in `out` (each in `out/<stem>/` with --matrix), each
 * checked to land inside it. A re-render of the same variant replaces its
 * files; another variant's (or unknown) content is refused before anything
 * is written, unless --force.
 */
async function writeOut(out: string, matrix: boolean, rendered: RenderedVariant[], force?: boolean): Promise<void> {
  const files = rendered.map((r) => {
    const sub = matrix ? `${r.names.stem}/` : '';
    return { r, files: { [`${sub}Dockerfile`]: r.dockerfile, [`${sub}build.json`]: jsonDoc(renderMetadata(r)) } };
  });
  // Two rows of one matrix never share a stem: variantValues refuses them before any render.
  const dir = await makeOutputDir(out, '--out');
  for (const { r, files: f } of files)
    await refuseOverwrite(dir, Object.entries(f), {
      force,
      whose: (existing) => {
        const was = renderedFor(existing);
        return was ? `rendered for ${was.stem}` : undefined;
      },
      own: (existing) => isOwn(existing, r),
      otherHint: '--out another directory, or --force to replace those files',
    });
  for (const { files: f } of files) for (const [rel, text] of Object.entries(f)) await writeInside(dir, rel, text);
}

export function registerRender(program: Command): void {
  program
    .command('render')
    .description('render the Docker definition of a recipe, with its names and definition hash')
    .argument('<recipe>', 'recipe name (in docker-defs/) or path')
    .option('--set <name=value>', 'set a parameter (repeatable)', collect)
    .option('--matrix', "render every variant of the recipe's build matrix")
    .option('--out <dir>', 'write Dockerfile and build.json there (one directory per variant with --matrix)')
    .option('--force', "with --out, replace another variant's files (or files sifkit did not write) already there")
    .option('--date <YYYYMMDD>', 'date in the EasyConfig name (default: today)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (recipe: string, flags: RenderFlags) => {
      process.exitCode = await runCommand(async (io) => {
        const ctx = await runRecipePipeline('render', recipe, flags, io);
        throwFirstVariantError(ctx);
        const rendered = ctx.variants.map((v) => v.rendered!);
        if (flags.out) await writeOut(flags.out, Boolean(flags.matrix), rendered, flags.force);
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
