import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import * as tty from 'node:tty';
import { Listr, ProcessOutput, type ListrTask } from 'listr2';
import { InterruptedError } from '../errors';
import type { PipelineContext, Stage, VariantState } from './context';
import type { PipelineDef } from './definition';
import { RunLogger } from './interrupt-logger';

export type RendererKind = 'default' | 'simple' | 'silent';

/** The renderer for this run: silent under --json, simple when not a TTY or in CI. */
export function chooseRenderer(
  json: boolean,
  stream: NodeJS.WriteStream = process.stderr,
  env = process.env,
): RendererKind {
  if (json) return 'silent';
  if (!stream.isTTY || env.CI) return 'simple';
  return 'default';
}

/**
 * A stream of its own on fd 2 for listr2. listr2 hijacks process.stdout and
 * process.stderr while it renders (buffering other writes); handing it
 * process.stderr itself would buffer its own progress until the end.
 */
function progressStream(): NodeJS.WriteStream {
  if (process.stderr.isTTY) return new tty.WriteStream(2);
  return new Writable({
    write(chunk, _enc, cb) {
      try {
        writeSync(2, chunk);
      } catch {
        // stderr closed: progress is best effort
      }
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
}

export interface RunSettings {
  renderer: RendererKind;
  /** How many variants run at once. */
  jobs: number;
}

function variantLabel(v: VariantState): string {
  return (
    v.rendered?.names.stem ??
    Object.entries(v.values)
      .map(([k, x]) => `${k}=${x}`)
      .join(' ')
  );
}

/**
 * Runs a pipeline: one listr2 task per variant, its stages as sequential
 * subtasks. A variant that fails stops there; the others go on. Progress
 * goes to stderr; results stay in the context for the caller to print.
 */
export async function runPipeline(
  def: PipelineDef,
  ctx: PipelineContext,
  stages: Record<string, Stage>,
  settings: RunSettings,
): Promise<void> {
  ctx.pass = def.stages.map((ref) => ref.stage);
  const variantTask = (v: VariantState): ListrTask<PipelineContext> => ({
    title: variantLabel(v),
    task: (_c, vtask) =>
      vtask.newListr(
        def.stages.map((ref): ListrTask<PipelineContext> => {
          const stage = stages[ref.stage];
          return {
            title: stage.title,
            skip: async () => {
              if (!stage.skip) return false;
              const why = await stage.skip(ctx, v, ref.with);
              if (why) v.skipped[stage.name] = why;
              return why ? `${stage.title}: ${why}` : false;
            },
            task: async (_c2, task) => {
              // Ctrl-C is said under the running stage, not as a line that would break the display.
              const onAbort = () => {
                task.output = 'interrupted: stopping and cleaning up (Ctrl-C again quits at once)';
              };
              ctx.signal.addEventListener('abort', onAbort, { once: true });
              try {
                if (ctx.signal.aborted) throw new InterruptedError();
                await stage.run(
                  ctx,
                  v,
                  {
                    progress: (line) => {
                      task.output = line;
                    },
                    title: (t) => {
                      task.title = t;
                    },
                  },
                  ref.with,
                );
              } catch (e) {
                // Ctrl-C: whatever the effect threw (an AbortError, a killed child), the line names the stage.
                const err = ctx.signal.aborted ? new InterruptedError(`${stage.title}: interrupted`) : (e as Error);
                v.error ??= err;
                v.failedStage ??= stage.name;
                throw err;
              } finally {
                ctx.signal.removeEventListener('abort', onAbort);
              }
              vtask.title = variantLabel(v);
            },
          };
        }),
        { concurrent: false, exitOnError: true },
      ),
  });

  const processOutput = new ProcessOutput(progressStream(), progressStream());
  // The renderers' loggers write "stdout" through this: it is fd 2 too.
  const logger = new RunLogger(ctx.signal, { useIcons: true, processOutput });
  const list = new Listr<PipelineContext, 'default', 'simple'>(ctx.variants.map(variantTask), {
    concurrent: settings.jobs > 1 ? settings.jobs : false,
    exitOnError: false,
    // sifkit owns SIGINT: it aborts the run's controller, and the tasks end.
    registerSignalListeners: false,
    collectErrors: false,
    renderer: 'default',
    fallbackRenderer: 'simple',
    // The renderer chooseRenderer picked, as listr2's conditions (listr2 also falls back when stdout is no TTY).
    silentRendererCondition: settings.renderer === 'silent',
    fallbackRendererCondition: settings.renderer === 'simple',
    rendererOptions: { collapseSubtasks: false, showErrorMessage: true, logger },
    fallbackRendererOptions: { logger },
  });
  await list.run(ctx);
  // Variant errors were recorded on each VariantState; the caller decides the exit.
}
