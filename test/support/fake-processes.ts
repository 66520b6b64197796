/**
 * Programs in memory, for unit tests: a test says what each command does
 * (matched by program name and arguments, the first rule that matches
 * wins) and the fake plays it through the same events and streams a real
 * child gives: 'spawn', stderr, stdout, 'exit', 'close', ENOENT for a
 * program that is not there, a broken pipe when it stops reading, SIGKILL.
 * Every call is recorded, with what it read from its stdin.
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import type { Processes, RunningProcess, SpawnOptions } from '../../src/util/processes';

export interface Call {
  cmd: string;
  /** The program's name, without its directory. */
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** What it read from its stdin (when it reads). */
  stdin: Buffer;
  /** How it ended: an exit code, a signal, or not at all yet. */
  ended?: { code: number | null; signal: NodeJS.Signals | null };
}

/** What one run of a command does, in this order. */
export interface Act {
  /** Read stdin to its end before anything else (as mksquashfs - does). */
  consumeStdin?: boolean;
  /** Read this many bytes of stdin, then close it: further writes break the pipe. */
  readStdinBytes?: number;
  /** Files it writes (absolute path → content); a function sees the call (an output named in the arguments). */
  writes?: Record<string, string | Buffer> | ((call: Call) => Record<string, string | Buffer>);
  /** Any other doing, given the call: may write files, look at its arguments. */
  does?: (call: Call) => void | Promise<void>;
  stderr?: string;
  stdout?: string;
  /** Run until killed. */
  hang?: boolean;
  /** Default 0. */
  exit?: number;
}

type Matcher = (name: string, args: string[]) => boolean;

interface Rule {
  match: Matcher;
  act: Act | ((call: Call) => Act);
  /** Left after this many runs (undefined: for ever). */
  times?: number;
}

/** `program ARG…`: the name and, when given, arguments the call starts with (a RegExp for one matches it). */
export function command(name: string, ...args: Array<string | RegExp>): Matcher {
  return (n, a) =>
    n === name && args.every((x, i) => a[i] !== undefined && (typeof x === 'string' ? a[i] === x : x.test(a[i])));
}

class FakeChild extends EventEmitter implements RunningProcess {
  pid?: number;
  stdin: Writable | null = null;
  stdout: PassThrough | null = null;
  stderr = new PassThrough();
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private stdinClosed = false;
  private stdinEnded: Promise<void>;
  private onKill?: (s: NodeJS.Signals) => void;
  /** The files it is writing now; a kill is seen once they are written. */
  private writing: Promise<void> = Promise.resolve();
  private killedBy?: NodeJS.Signals;
  readonly killed: Promise<NodeJS.Signals>;

  constructor(
    private call: Call,
    opts: SpawnOptions,
  ) {
    super();
    let ended: () => void = () => undefined;
    this.stdinEnded = new Promise((r) => (ended = r));
    if (opts.stdin === 'pipe') {
      const chunks: Buffer[] = [];
      this.stdin = new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          if (this.stdinClosed) return cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
          chunks.push(chunk);
          call.stdin = Buffer.concat(chunks);
          cb();
        },
        final: (cb) => {
          ended();
          cb();
        },
      });
    } else ended();
    if (opts.stdout === 'pipe') this.stdout = new PassThrough();
    this.killed = new Promise((r) => (this.onKill = r));
  }

  get running(): boolean {
    return this.pid !== undefined && this.exitCode === null && this.signalCode === null;
  }

  kill(signal: NodeJS.Signals): boolean {
    if (!this.running || this.killedBy) return false;
    this.killedBy = signal;
    this.onKill?.(signal);
    // A real process's writes are done before its death is seen: the file being written lands first.
    void this.writing.then(() => this.end(null, signal));
    return true;
  }

  /** Fails to start: the program is not there. */
  missing(): void {
    const e = Object.assign(new Error(`spawn ${this.call.cmd} ENOENT`), {
      code: 'ENOENT',
      errno: -2,
      syscall: `spawn ${this.call.cmd}`,
      path: this.call.cmd,
    });
    process.nextTick(() => this.emit('error', e));
  }

  async play(pid: number, act: Act): Promise<void> {
    this.pid = pid;
    await tick();
    this.emit('spawn');
    const stop = this.killed.then(() => 'killed' as const);
    const step = async (p: Promise<unknown>) => (await Promise.race([p.then(() => 'ok' as const), stop])) === 'ok';
    if (act.consumeStdin && !(await step(this.stdinEnded))) return;
    if (act.readStdinBytes !== undefined) {
      if (!(await step(until(() => this.call.stdin.length >= act.readStdinBytes! || !this.running)))) return;
      this.stdinClosed = true;
    }
    const writes = typeof act.writes === 'function' ? act.writes(this.call) : (act.writes ?? {});
    this.writing = (async () => {
      for (const [file, content] of Object.entries(writes)) {
        if (this.killedBy) return;
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.writeFile(file, content);
      }
    })();
    await this.writing;
    if (act.does && !(await step(Promise.resolve(act.does(this.call))))) return;
    if (!this.running) return;
    if (act.stderr) this.stderr.write(act.stderr);
    if (act.stdout) this.stdout?.write(act.stdout);
    if (act.hang) return void (await this.killed);
    await this.end(act.exit ?? 0, null);
  }

  private async end(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = code;
    this.signalCode = signal;
    this.stdinClosed = true;
    this.call.ended = { code, signal };
    this.emit('exit', code, signal);
    // 'close' comes after the output streams are drained, as with a real child.
    await Promise.all([this.stdout, this.stderr].map((s) => drained(s)));
    this.emit('close', code, signal);
  }
}

function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await tick();
}

/** Ends a stream and, when someone reads it, waits until they have read it all. */
function drained(s: (Readable & { end(): void }) | null): Promise<void> {
  if (!s) return Promise.resolve();
  const done = s.readableFlowing ? new Promise<void>((r) => s.once('end', r)) : Promise.resolve();
  s.end();
  return done;
}

export class FakeProcesses implements Processes {
  readonly calls: Call[] = [];
  readonly children: FakeChild[] = [];
  private rules: Rule[] = [];
  private gone = new Set<string>();
  // Above any real pid_max (2^22), so nothing reads a real process's /proc by chance.
  private nextPid = 5_000_000;

  /** What a command does when run; `times` makes a rule last for that many runs. */
  on(match: Matcher, act: Act | ((call: Call) => Act), times?: number): this {
    this.rules.push({ match, act, times });
    return this;
  }

  /** A program that is not installed. */
  missing(name: string): this {
    this.gone.add(name);
    return this;
  }

  /** The calls of one program, in order. */
  callsOf(name: string): Call[] {
    return this.calls.filter((c) => c.name === name);
  }

  /** The command lines run, `name arg…`, in order. */
  lines(): string[] {
    return this.calls.map((c) => [c.name, ...c.args].join(' '));
  }

  spawn(cmd: string, args: string[], opts: SpawnOptions): RunningProcess {
    const name = path.basename(cmd);
    const call: Call = { cmd, name, args: [...args], env: opts.env, cwd: opts.cwd, stdin: Buffer.alloc(0) };
    this.calls.push(call);
    const child = new FakeChild(call, opts);
    this.children.push(child);
    if (this.gone.has(name)) {
      child.missing();
      return child;
    }
    const rule = this.rules.find((r) => (r.times === undefined || r.times > 0) && r.match(name, args));
    if (!rule) throw new Error(`fake processes: nothing scripted for ${[name, ...args].join(' ')}`);
    if (rule.times !== undefined) rule.times--;
    const act = typeof rule.act === 'function' ? rule.act(call) : rule.act;
    void child.play(this.nextPid++, act);
    return child;
  }
}
