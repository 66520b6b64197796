import { isSifkitError, ExitCode } from '../errors';
import { appendAudit, type AuditRecord } from './audit';
import { acquireLock } from './lock';
import type { Tree } from './root';

export interface MutationResult<T> {
  value: T;
  files: AuditRecord['files'];
  detail?: Record<string, unknown>;
}

function outcomeOf(e: unknown): AuditRecord['outcome'] {
  if (!isSifkitError(e)) return 'failed';
  if (e.exitCode === ExitCode.refused) return 'refused';
  if (e.exitCode === ExitCode.interrupted) return 'interrupted';
  return 'failed';
}

/**
 * Runs one mutating command under the tree lock and records it in the
 * audit log, whether it succeeded or not.
 */
export async function mutate<T>(tree: Tree, action: string, signal: AbortSignal | undefined, fn: () => Promise<MutationResult<T>>): Promise<T> {
  const lock = await acquireLock(tree.lock, { command: `sifkit ${process.argv.slice(2).join(' ')}`.trim(), signal });
  try {
    const r = await fn();
    await appendAudit(tree.audit, { action, files: r.files, outcome: 'ok', detail: r.detail });
    return r.value;
  } catch (e) {
    await appendAudit(tree.audit, { action, files: [], outcome: outcomeOf(e), error: (e as Error).message }).catch(() => undefined);
    throw e;
  } finally {
    await lock.release();
  }
}
