/**
 * Reads the JSON-lines stream of the build endpoint. The HTTP status says
 * 200 even when a step fails: failure arrives as an `error`/`errorDetail`
 * line, so it is parsed here and never left to dockerode's followProgress.
 * Each JSON line is checked by its schema (validate/schemas/engine.ts).
 */
import { InterruptedError, OperationError } from '../errors';
import { formatIssue } from '../validate/schema';
import { buildLineAnswer } from '../validate/schemas/engine';

export interface BuildEvent {
  kind: 'step' | 'log' | 'error' | 'image' | 'container';
  text: string;
  step?: { n: number; of: number; instruction: string };
}

const STEP = /^Step (\d+)\/(\d+) : (.*)$/;
const RUNNING = /^ ---> Running in ([0-9a-f]{12,64})/;

export class BuildStreamParser {
  private partial = '';
  readonly tail: string[] = [];
  imageId?: string;
  error?: string;
  step?: { n: number; of: number; instruction: string };
  /** Intermediate containers the engine started, to remove after an abort. */
  readonly containers = new Set<string>();

  constructor(private readonly keep = 30) {}

  /** Feeds a chunk; returns the events it completed. */
  feed(chunk: Buffer | string): BuildEvent[] {
    this.partial += chunk.toString();
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    return lines.flatMap((l) => this.line(l));
  }

  /** Flushes a last line without a newline. */
  end(): BuildEvent[] {
    const rest = this.partial;
    this.partial = '';
    return rest.trim() ? this.line(rest) : [];
  }

  private remember(text: string) {
    for (const l of text.split('\n')) {
      if (l.trim() === '') continue;
      this.tail.push(l);
      if (this.tail.length > this.keep) this.tail.shift();
    }
  }

  private line(raw: string): BuildEvent[] {
    if (raw.trim() === '') return [];
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      // Not JSON: keep it as log text, it may be a proxy's error page.
      this.remember(raw);
      return [{ kind: 'log', text: raw }];
    }
    // JSON that is not a build line is the build's failure, named by its field, never a TypeError.
    const parsed = buildLineAnswer.safeParse(value);
    if (!parsed.success) {
      const text = formatIssue(parsed.error.issues[0], value, "the Docker engine's build stream");
      this.error ??= text;
      this.remember(`ERROR: ${text}`);
      return [{ kind: 'error', text }];
    }
    const msg = parsed.data;
    const out: BuildEvent[] = [];
    if (msg.error !== undefined || msg.errorDetail !== undefined) {
      const text = (msg.errorDetail?.message ?? msg.error ?? 'unknown build error').trim();
      this.error ??= text;
      this.remember(`ERROR: ${text}`);
      out.push({ kind: 'error', text });
    }
    const image = typeof msg.aux === 'object' ? msg.aux.ID : undefined;
    if (image) {
      this.imageId = image;
      out.push({ kind: 'image', text: image });
    }
    const text = msg.stream ?? msg.status;
    if (text !== undefined) {
      this.remember(text);
      for (const l of text.split('\n')) {
        const s = STEP.exec(l.trim());
        if (s) {
          this.step = { n: Number(s[1]), of: Number(s[2]), instruction: s[3] };
          out.push({ kind: 'step', text: l.trim(), step: this.step });
          continue;
        }
        const r = RUNNING.exec(l);
        if (r) {
          this.containers.add(r[1]);
          out.push({ kind: 'container', text: r[1] });
          continue;
        }
        const built = /^Successfully built ([0-9a-f]{12,64})/.exec(l.trim());
        if (built && !this.imageId) this.imageId = built[1];
        if (l.trim()) out.push({ kind: 'log', text: l });
      }
    }
    return out;
  }
}

/**
 * Follows a build's stream to its end: every chunk to the build log and
 * the parser, each step to `onStep`. Settles when the stream ends (the
 * parser then holds the image or the error), rejects on a stream error or
 * an abort. The abort listener goes with the build, not with the signal.
 */
export function followBuild(
  stream: NodeJS.ReadableStream,
  parser: BuildStreamParser,
  log: NodeJS.WritableStream,
  signal: AbortSignal,
  onStep?: (line: string) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onEvents = (events: BuildEvent[]) => {
      for (const ev of events)
        if (ev.kind === 'step' && ev.step)
          onStep?.(`step ${ev.step.n}/${ev.step.of}: ${ev.step.instruction.slice(0, 100)}`);
    };
    const onAbort = () => reject(new InterruptedError('build interrupted'));
    const done = () => signal.removeEventListener('abort', onAbort);
    stream.on('data', (chunk: Buffer) => {
      log.write(chunk);
      onEvents(parser.feed(chunk));
    });
    stream.on('end', () => {
      done();
      onEvents(parser.end());
      resolve();
    });
    stream.on('error', (e: Error) => {
      done();
      reject(e);
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** What a parsed build stream says went wrong, as one line naming the step, with the log's last lines as the hint. */
export function buildFailure(parser: BuildStreamParser, stem: string, logPath: string): OperationError | undefined {
  if (parser.error !== undefined) {
    const step = parser.step
      ? `step ${parser.step.n}/${parser.step.of} (${parser.step.instruction.slice(0, 80)})`
      : 'the build';
    return new OperationError('build-failed', `${stem}: ${step} failed: ${parser.error.split('\n')[0]}`, {
      hint: `last lines:\n${parser.tail.slice(-10).join('\n')}\nfull log: ${logPath}`,
    });
  }
  if (!parser.imageId)
    return new OperationError('build-failed', `${stem}: the engine reported no image (log: ${logPath})`);
  return undefined;
}
