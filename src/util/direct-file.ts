/**
 * A new file written from a stream past the page cache: the image archive
 * a release keeps. It is written once and not read again while the page
 * cache could help (the converter reads the stream, not the file), and at
 * tens of GB, through the cache, it would push out what the build host
 * does use. Writing through the cache also costs the writer: measured on
 * the 2-core bench VM, 1 GiB into fresh page cache took 2.9 to 3.5 s of
 * kernel time, against 0.25 s with O_DIRECT.
 *
 * Node cannot give O_DIRECT the aligned buffers it needs, so `dd
 * oflag=direct` writes (GNU dd writes its last short block without
 * O_DIRECT). Where the file system refuses O_DIRECT (checked by opening
 * the file so first) or dd cannot run, the file is written the usual way.
 */
import { constants, createWriteStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { InterruptedError, errnoCode, errnoOfMessage, isSifkitError } from '../errors';
import { startChild } from './process';
import { realProcesses, type Processes } from './processes';

export interface FileSink {
  sink: Writable;
  /** Resolves once every byte the sink was given is in the file; rejects when the sink was cut short. */
  written: Promise<void>;
  /** 'direct' when past the page cache. */
  how: 'direct' | 'buffered';
}

/** A system error for what dd said, so it reads as a failed write of `file` does; undefined for anything else. */
export function ddSystemError(stderrLine: string, file: string): Error | undefined {
  const code = errnoOfMessage(stderrLine);
  if (!code) return undefined;
  return Object.assign(new Error(`${code}: ${stderrLine.trim()}`), { code, syscall: 'write', path: file });
}

/** The usual way: through the page cache. */
function buffered(file: string): FileSink {
  const sink = createWriteStream(file, { flags: 'wx' });
  const written = new Promise<void>((resolve, reject) => {
    sink.on('close', () => (sink.writableFinished ? resolve() : reject(new InterruptedError())));
    sink.on('error', reject);
  });
  return { sink, written, how: 'buffered' };
}

/** Opens `file` (new) for O_DIRECT and closes it: false when the file system refuses O_DIRECT (nothing left behind). */
async function directOpens(file: string): Promise<boolean> {
  const direct = (constants as Record<string, number | undefined>).O_DIRECT;
  if (direct === undefined) return false;
  let fh: FileHandle;
  try {
    fh = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | direct, 0o666);
  } catch (e) {
    if (errnoCode(e) !== 'EINVAL') throw e;
    // Linux creates the file before it refuses the flag.
    await fs.rm(file, { force: true });
    return false;
  }
  await fh.close();
  return true;
}

/**
 * Creates `file` (it must not exist) and gives a sink for its bytes,
 * written past the page cache where the file system allows it.
 */
export async function createFileSink(file: string, opts: { processes?: Processes } = {}): Promise<FileSink> {
  if (!(await directOpens(file))) return buffered(file);
  // nocreat: a dd that starts after the read was given up (the file removed) cannot make the name again.
  // No abort listener of its own (a release's signal has one per running child already): an interrupted
  // read destroys its sinks, and dd, its input closed, ends; `written` then rejects.
  const dd = startChild(
    'dd',
    [`of=${file}`, 'bs=1M', 'iflag=fullblock', 'oflag=direct', 'conv=notrunc,nocreat', 'status=none'],
    { stdin: 'pipe', processes: opts.processes ?? realProcesses, label: 'dd' },
  );
  const started = await new Promise<boolean>((resolve) => {
    dd.child.once('spawn', () => resolve(true));
    dd.child.once('error', () => resolve(false));
  });
  if (!started) {
    dd.done.catch(() => undefined);
    await fs.rm(file, { force: true });
    return buffered(file);
  }
  const sink = dd.stdin as Writable;
  const written = dd.done.then(
    () => {
      // dd ends well on an early end of its input too: a sink destroyed before its end is no whole file.
      if (!sink.writableFinished) throw new InterruptedError();
    },
    (e: Error) => {
      if (isSifkitError(e) && e.code !== 'dd-failed') throw e;
      throw ddSystemError(dd.stderrTail().trim().split('\n').pop() ?? '', file) ?? e;
    },
  );
  return { sink, written, how: 'direct' };
}
