/**
 * Reads the JSON-lines stream of the build endpoint. The HTTP status says
 * 200 even when a step fails: failure arrives as an `error`/`errorDetail`
 * line, so it is parsed here and never left to dockerode's followProgress.
 */
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
    let msg: {
      stream?: string;
      error?: string;
      errorDetail?: { message?: string };
      aux?: { ID?: string };
      status?: string;
    };
    try {
      msg = JSON.parse(raw);
    } catch {
      // Not JSON: keep it as log text, it may be a proxy's error page.
      this.remember(raw);
      return [{ kind: 'log', text: raw }];
    }
    const out: BuildEvent[] = [];
    if (msg.error !== undefined || msg.errorDetail !== undefined) {
      const text = (msg.errorDetail?.message ?? msg.error ?? 'unknown build error').trim();
      this.error ??= text;
      this.remember(`ERROR: ${text}`);
      out.push({ kind: 'error', text });
    }
    if (msg.aux?.ID) {
      this.imageId = msg.aux.ID;
      out.push({ kind: 'image', text: msg.aux.ID });
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
