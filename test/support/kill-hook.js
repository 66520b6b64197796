/**
 * Loaded into a sifkit process with `node --require` by the kill-point
 * harness (test/support/killpoints.ts): counts the process's file-system
 * writes under one directory, in the order the process asks for them, and
 * sends the process a signal just before the N-th. A kill point is so a
 * state of the command (its N-th write), never an instant: the same N
 * stops the same command at the same step on any machine, however loaded.
 *
 * SIFKIT_KILLHOOK_UNDER  only writes to paths under this directory count
 * SIFKIT_KILLHOOK_AT     N: the signal goes just before the N-th write (none: count only)
 * SIFKIT_KILLHOOK_SIGNAL SIGKILL (the write never happens) or SIGINT (delivered as
 *                        Ctrl-C is, to the process's handler; the write goes on)
 * SIFKIT_KILLHOOK_LOG    file that gets one line per counted write: "N op path"
 *
 * The heartbeat's utimes is not a write here: it is timed, not a step.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const under = process.env.SIFKIT_KILLHOOK_UNDER;
const at = Number(process.env.SIFKIT_KILLHOOK_AT || 0);
const signal = process.env.SIFKIT_KILLHOOK_SIGNAL || 'SIGKILL';
const log = process.env.SIFKIT_KILLHOOK_LOG;
const appendLine = fs.appendFileSync;

if (under) {
  const prefix = path.resolve(under) + path.sep;
  let count = 0;
  // The log itself may lie under the directory (a case's own): its lines are no step of the command.
  const logAt = log && path.resolve(log);
  const counts = (p) => typeof p === 'string' && path.resolve(p).startsWith(prefix) && path.resolve(p) !== logAt;
  const note = (op, p) => {
    count++;
    if (log) appendLine(log, `${count} ${op} ${path.resolve(p)}\n`);
    if (count === at) process.kill(process.pid, signal);
  };
  const writes = (flags) => {
    if (flags === undefined || flags === null) return false;
    if (typeof flags === 'number')
      return (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT)) !== 0;
    return /[wa+]/.test(String(flags));
  };
  // Which argument names the path written (both, for rename and link: either end counts).
  const ops = {
    rename: [0, 1],
    link: [1],
    symlink: [1],
    unlink: [0],
    rm: [0],
    rmdir: [0],
    mkdir: [0],
    chmod: [0],
    copyFile: [1],
    writeFile: [0],
    appendFile: [0],
    truncate: [0],
  };
  // A mkdir of a directory that is there, or a removal of a path that is not, changes nothing: not a step.
  const lstat = fs.lstatSync;
  const exists = (p) => lstat(p, { throwIfNoEntry: false }) !== undefined;
  const noop = { mkdir: (p) => exists(p), rm: (p) => !exists(p), rmdir: (p) => !exists(p), unlink: (p) => !exists(p) };
  const wrap = (obj, fn, name, args) => {
    const orig = obj[fn];
    if (typeof orig !== 'function') return;
    obj[fn] = function (...a) {
      const hit = args.map((i) => a[i]).find(counts);
      if (hit !== undefined && !noop[name]?.(hit)) note(name, hit);
      return orig.apply(this, a);
    };
  };
  for (const [name, args] of Object.entries(ops)) {
    wrap(fs.promises, name, name, args);
    wrap(fs, `${name}Sync`, name, args);
    wrap(fs, name, name, args);
  }
  for (const [obj, name] of [
    [fs.promises, 'open'],
    [fs, 'openSync'],
    [fs, 'open'],
  ]) {
    const orig = obj[name];
    obj[name] = function (p, flags, ...rest) {
      if (counts(p) && writes(flags)) note('open', p);
      return orig.call(this, p, flags, ...rest);
    };
  }
}
