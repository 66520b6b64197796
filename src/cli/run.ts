import { setMaxListeners } from 'node:events';
import {
  engineFailure,
  ExitCode,
  fromSystemError,
  InterruptedError,
  isSifkitError,
  terminalMessage,
  type SifkitError,
} from '../index';
import { systemHint } from './system-hint';
/**
 * The one place where a command's life ends: errors become one line on
 * stderr (or one JSON document with --json), exit codes follow the error
 * class, and Ctrl-C aborts the run's AbortController so every effect can
 * stop and clean up.
 */

export interface CommandIO {
  signal: AbortSignal;
  json: boolean;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /**
   * Set while something redraws the terminal in place (listr2's renderer):
   * a line written under it would be left on screen as a stale copy, so the
   * Ctrl-C notice is left to the display (the pipeline runner shows it).
   */
  liveDisplay?: boolean;
}

export type CommandHandler = (io: CommandIO) => Promise<number | void>;

/** How an error is shown: one line, a hint, an exit code; "internal error" only for bugs. */
export function errorLine(e: unknown): { code: string; message: string; hint?: string; exitCode: number } {
  // One line each, whatever a path or name in them holds (a line break, an escape sequence).
  const shown = (x: { code: string; message: string; hint?: string; exitCode: number }) => ({
    code: x.code,
    message: terminalMessage(x.message),
    ...(x.hint !== undefined && { hint: terminalMessage(x.hint) }),
    exitCode: x.exitCode,
  });
  if (isSifkitError(e)) return shown(withSystemHint(e, e.cause));
  const sys = engineFailure(e) ?? fromSystemError(e);
  if (sys) return shown(withSystemHint(sys, e));
  return {
    code: 'internal',
    message: `internal error (a bug in sifkit): ${(e as Error)?.stack ?? String(e)}`,
    exitCode: ExitCode.failed,
  };
}

/** A file system refusal without a hint of its own gets one naming who ran and what shows why. */
function withSystemHint(e: SifkitError, cause: unknown) {
  const hint = e.hint ?? (e.code.startsWith('system-') ? systemHint(cause) : undefined);
  return { code: e.code, message: e.message, hint, exitCode: e.exitCode };
}

export type ErrorLine = ReturnType<typeof errorLine>;

/**
 * How every failure is told, whether a command ran or its flags were
 * refused before it could: one line on stderr and a hint, and with --json
 * the error document (docs/schemas/error.schema.json) on stdout as well,
 * so a program reading stdout always gets JSON.
 */
export function reportError(
  line: ErrorLine,
  json: boolean,
  out: { stdout: (t: string) => void; stderr: (t: string) => void },
): void {
  if (json)
    out.stdout(
      JSON.stringify({ ok: false, error: { code: line.code, message: line.message, hint: line.hint } }, null, 2) + '\n',
    );
  out.stderr(`sifkit: error: ${line.message}\n`);
  if (line.hint) out.stderr(`sifkit: hint: ${line.hint}\n`);
}

export async function runCommand(handler: CommandHandler, opts: { json?: boolean } = {}): Promise<number> {
  const controller = new AbortController();
  // Every running child and stream of the command listens here, by design (Ctrl-C stops them all):
  // as many as the jobs run at once. Node's leak warning at 11 printed itself on a release's stderr
  // with --jobs 2; a bound far above any --jobs still tells a real leak.
  setMaxListeners(1000, controller.signal);
  const json = Boolean(opts.json);
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      if (!io.liveDisplay) process.stderr.write(`\nsifkit: ${sig}: stopping and cleaning up (again to quit at once)\n`);
      controller.abort(new InterruptedError(`interrupted by ${sig}`));
    } else process.exit(ExitCode.interrupted);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Node exits with 0 when nothing is left to wait on, even with the command's work unfinished (a stream
  // whose end never came, a promise nothing will settle): that would read as success with nothing done.
  const onStall = () => {
    process.stderr.write(
      'sifkit: error: the command stopped with its work unfinished (nothing left to wait on); nothing was published\n',
    );
    process.exitCode = ExitCode.failed;
  };
  process.once('beforeExit', onStall);
  const io: CommandIO = {
    signal: controller.signal,
    json,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  };
  try {
    const code = await handler(io);
    if (controller.signal.aborted) throw new InterruptedError();
    return code ?? ExitCode.ok;
  } catch (e) {
    const err = controller.signal.aborted && !isSifkitError(e) ? new InterruptedError() : e;
    const line = errorLine(err);
    reportError(line, json, io);
    return line.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('beforeExit', onStall);
  }
}
