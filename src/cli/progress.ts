/**
 * Progress for a long command that has no pipeline display (standalone
 * `convert`): on a terminal one line redrawn each second (bytes written,
 * rate, time); in plain output (no terminal, or CI) a line every ten
 * seconds, none at the start, so input refused at once is the one line of
 * its error; nothing under --json. The figures are the
 * bytes in this process's temporary files in the output directory.
 */
import { humanSize } from './output';
import type { CommandIO } from './run';
import { ownTempBytes } from '../index';

export function startProgress(io: CommandIO, what: string, dir: string): () => void {
  if (io.json) return () => {};
  const live = Boolean(process.stderr.isTTY) && !process.env.CI;
  const started = Date.now();
  const line = async () => {
    const bytes = await ownTempBytes(dir);
    const s = (Date.now() - started) / 1000;
    return `${what}: ${humanSize(bytes)} written, ${humanSize(bytes / Math.max(s, 1))}/s, ${Math.round(s)} s`;
  };
  if (live) io.liveDisplay = true;
  let stopped = false;
  const timer = setInterval(
    () =>
      void line().then((l) => {
        if (!stopped) io.stderr(live ? `\r\x1b[K${l}` : `${l}\n`);
      }),
    live ? 1000 : 10_000,
  );
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    if (live) {
      io.stderr('\r\x1b[K');
      io.liveDisplay = false;
    }
  };
}
