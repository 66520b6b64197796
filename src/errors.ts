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

/**
 * What each system error means, and whose it is: the environment's
 * (permissions, a read-only or full disk: exit 1), or the input's, a path
 * that names the wrong kind of thing (a directory for a file, a file in
 * the way, a link loop: exit 2).
 */
const SYSTEM_MEANING: Record<string, { meaning: string; input: boolean }> = {
  EROFS: { meaning: 'read-only file system', input: false },
  EACCES: { meaning: 'permission denied', input: false },
  EPERM: { meaning: 'operation not permitted', input: false },
  ENOSPC: { meaning: 'no space left on device', input: false },
  EDQUOT: { meaning: 'disk quota exceeded', input: false },
  EIO: { meaning: 'input/output error', input: false },
  EFBIG: { meaning: 'file too large', input: false },
  EMFILE: { meaning: 'too many open files', input: false },
  ENFILE: { meaning: 'too many open files in the system', input: false },
  EXDEV: { meaning: 'crosses file systems', input: false },
  EBUSY: { meaning: 'busy', input: false },
  ETXTBSY: { meaning: 'text file busy', input: false },
  ENOENT: { meaning: 'no such file or directory', input: true },
  ENOTDIR: { meaning: 'a part of the path is not a directory', input: true },
  EISDIR: { meaning: 'is a directory, where a file is expected', input: true },
  EEXIST: { meaning: 'already exists', input: true },
  ENOTEMPTY: { meaning: 'directory not empty', input: true },
  ELOOP: { meaning: 'too many levels of symbolic links', input: true },
  ENAMETOOLONG: { meaning: 'file name too long', input: true },
};

/** A path as it can stand in a one-line message (control characters escaped). */
function shownPath(p: string): string {
  return /[\u0000-\u001f\u007f]/.test(p) ? JSON.stringify(p) : p;
}

/**
 * A file system failure (read-only directory, full disk, permissions, a
 * directory given for a file) is not a bug: one line saying what, where
 * (the path, and the destination of a rename or link) and the errno.
 */
export function fromSystemError(e: unknown): SifkitError | undefined {
  const code = errnoCode(e);
  if (!code || !(code in SYSTEM_MEANING)) return undefined;
  const { syscall, path: p, dest } = e as { syscall?: string; path?: string; dest?: string };
  const where =
    typeof p === 'string' ? ` ${shownPath(p)}${typeof dest === 'string' ? ` -> ${shownPath(dest)}` : ''}` : '';
  const { meaning, input } = SYSTEM_MEANING[code];
  const message = `cannot ${syscall ?? 'access'}${where}: ${meaning} (${code})`;
  const Kind = input ? InputError : OperationError;
  return new Kind(`system-${code.toLowerCase()}`, message, { cause: e });
}
