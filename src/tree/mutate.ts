/**
 * How every mutating command runs: under the tree lock, with what can be
 * checked checked before the first change (the audit log opened for
 * append, the state directory writable), each change noted with how to
 * undo it, and one audit line at the end. A failure after changes began
 * undoes them when every one can be undone, and otherwise says so and
 * what finishes the job; either way the message tells which.
 */
import { constants, promises as fs } from 'node:fs';
import { mkdirShared } from '../util/files';
import { fromSystemError, isSifkitError, ExitCode, OperationError, errnoCode } from '../errors';
import { auditLine, writeAuditLine, type AuditRecord } from './audit';
import { acquireLock, describeLock } from './lock';
import { terminalMessage } from '../emit/terminal';
import { commandLine } from '../emit/bash';
import type { Tree } from './root';

export interface MutationResult<T> {
  value: T;
  files: AuditRecord['files'];
  detail?: Record<string, unknown>;
}

/** What a command tells `mutate` as it changes the tree. */
export interface Changes {
  /** A change was made; `undo` puts it back (none: it cannot be undone). */
  made(undo?: () => Promise<void>): void;
}

export interface MutateOptions {
  /** What finishes the job when a failure leaves it half done (default: verify --repair). */
  resume?: string;
}

function outcomeOf(e: unknown): AuditRecord['outcome'] {
  if (!isSifkitError(e)) return 'failed';
  if (e.exitCode === ExitCode.refused) return 'refused';
  if (e.exitCode === ExitCode.interrupted) return 'interrupted';
  return 'failed';
}

/** The audit log opened for append before anything changes: a log we cannot write stops the command first. */
async function openAudit(tree: Tree): Promise<fs.FileHandle> {
  try {
    await fs.access(tree.state, constants.W_OK);
    return await fs.open(tree.audit, 'a', 0o644);
  } catch (e) {
    const sys = fromSystemError(e);
    throw new OperationError(
      'audit-unwritable',
      `cannot write the audit log ${tree.audit}${sys ? `: ${sys.message.replace(/^cannot \S+ \S+: /, '')}` : ` (${errnoCode(e) ?? e})`}; nothing was changed`,
      {
        cause: e,
        hint: 'every change to the tree is recorded there: fix its permissions or the file system, then run the command again',
      },
    );
  }
}

/** Undoes what can be undone, newest first; true when everything was. */
async function rollBack(undos: Array<(() => Promise<void>) | undefined>): Promise<boolean> {
  if (undos.some((u) => !u)) return false;
  for (const u of [...undos].reverse()) {
    try {
      await (u as () => Promise<void>)();
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Runs one mutating command under the tree lock and records it in the
 * audit log: every failure and refusal, and every success that changed
 * something (a command with nothing to do leaves no line).
 */
export async function mutate<T>(
  tree: Tree,
  action: string,
  signal: AbortSignal | undefined,
  fn: (changes: Changes) => Promise<MutationResult<T>>,
  opts: MutateOptions = {},
): Promise<T> {
  await mkdirShared(tree.state);
  const lock = await acquireLock(tree.lock, {
    command: commandLine(['sifkit', ...process.argv.slice(2)]),
    signal,
    // A wait of up to two minutes must not look like a hang: said once, on stderr, beside the command's other notes.
    onWait: (held, waitMs) =>
      process.stderr.write(
        `sifkit: waiting up to ${Math.round(waitMs / 1000)} s for the tree's lock, held by ${terminalMessage(describeLock(held))} (Ctrl-C stops waiting; nothing is changed yet)\n`,
      ),
  });
  try {
    const audit = await openAudit(tree);
    try {
      const undos: Array<(() => Promise<void>) | undefined> = [];
      let r: MutationResult<T>;
      try {
        r = await fn({ made: (undo) => undos.push(undo) });
      } catch (e) {
        let err = e;
        if (undos.length) {
          const undone = await rollBack(undos);
          // An interrupted run stays an interruption (exit 130), whatever error the abort surfaced as.
          err = isSifkitError(e) || signal?.aborted ? e : (fromSystemError(e) ?? e);
          if (err instanceof Error)
            err.message += undone
              ? '; its changes were rolled back, the tree is as before'
              : `; the tree was left partly changed: ${opts.resume ?? 'sifkit verify --repair makes it consistent'}`;
        }
        await writeAuditLine(
          audit,
          auditLine({ action, files: [], outcome: outcomeOf(err), error: (err as Error).message }),
        ).catch(() => undefined);
        throw err;
      }
      if (r.files.length)
        await writeAuditLine(audit, auditLine({ action, files: r.files, outcome: 'ok', detail: r.detail }));
      return r.value;
    } finally {
      await audit.close();
    }
  } finally {
    await lock.release();
  }
}
