/**
 * One small error hierarchy. Every error a person may see carries a stable
 * code, a one-line message, an optional hint and the exit code the CLI uses.
 * Anything else that escapes is a bug and is reported as such.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  refused: 3,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorDetails {
  hint?: string;
  cause?: unknown;
}

export abstract class SifkitError extends Error {
  abstract readonly exitCode: ExitCodeValue;
  readonly hint?: string;
  constructor(
    readonly code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.hint = details.hint;
  }
}

/** Bad flags, bad recipe values, bad files given by the user: exit 2. */
export class InputError extends SifkitError {
  readonly exitCode = ExitCode.usage;
}

/** The operation was tried and failed (a build step, an engine call): exit 1. */
export class OperationError extends SifkitError {
  readonly exitCode = ExitCode.failed;
}

/** A safety check refused to go on (a leak, a checksum, a reference): exit 3. */
export class RefusedError extends SifkitError {
  readonly exitCode = ExitCode.refused;
}

/** The run was cancelled (Ctrl-C, SIGTERM): exit 130. */
export class InterruptedError extends SifkitError {
  readonly exitCode = ExitCode.interrupted;
  constructor(message = 'interrupted', details: ErrorDetails = {}) {
    super('interrupted', message, details);
  }
}

/** Throws InterruptedError when the run's signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError();
}

export function isSifkitError(e: unknown): e is SifkitError {
  return e instanceof SifkitError;
}

/** A node system error code (ENOENT, EACCES...), if any. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string'
    ? (e as { code: string }).code
    : undefined;
}

const SYSTEM_MEANING: Record<string, string> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EMFILE: 'too many open files',
  EXDEV: 'crosses file systems',
};

/**
 * A file system failure (read-only directory, full disk, permissions) is
 * the environment's, not a bug: one line saying what and where.
 */
export function fromSystemError(e: unknown): SifkitError | undefined {
  const code = errnoCode(e);
  if (!code || !(code in SYSTEM_MEANING)) return undefined;
  const { syscall, path: p, dest } = e as { syscall?: string; path?: string; dest?: string };
  const where = p ? ` ${p}${dest ? ` -> ${dest}` : ''}` : '';
  return new OperationError(`system-${code.toLowerCase()}`, `cannot ${syscall ?? 'access'}${where}: ${SYSTEM_MEANING[code]} (${code})`, { cause: e });
}
