/**
 * OSU micro-benchmark output → figures. The header comment names what the
 * column is (`Latency (us)`, `Avg Latency(us)`, `Bandwidth (MB/s)`); data
 * lines are the message size then that value (collectives may add Min,
 * Max, Iterations columns after it). Pure.
 */
export interface OsuPoint {
  size: number;
  value: number;
}

export interface OsuResult {
  benchmark?: string;
  kind: 'latency' | 'bandwidth' | 'unknown';
  unit: string;
  points: OsuPoint[];
}

export function parseOsu(text: string): OsuResult {
  let benchmark: string | undefined;
  let kind: OsuResult['kind'] = 'unknown';
  let unit = '';
  const points: OsuPoint[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      const title = /^#\s*(OSU .*?Test)/.exec(line);
      if (title) benchmark = title[1];
      const col = /^#\s*Size\s+(.*)$/i.exec(line);
      if (col) {
        const head = col[1];
        if (/bandwidth/i.test(head)) {
          kind = 'bandwidth';
          unit = unitIn(head, 'MB/s');
        } else if (/latency/i.test(head)) {
          kind = 'latency';
          unit = unitIn(head, 'us');
        }
      }
      continue;
    }
    const m = /^(\d+)\s+([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?\d+)?)(\s|$)/.exec(line);
    if (m && kind !== 'unknown') points.push({ size: Number(m[1]), value: Number(m[2]) });
  }
  return { benchmark, kind, unit, points };
}

/**
 * The unit in a column head (`Latency (us)`), as the results schema holds
 * it: the image prints it, and it reaches the report and the pull request,
 * so anything but a plain unit gives the benchmark's usual one.
 */
function unitIn(head: string, usual: string): string {
  const unit = /\(([^)]+)\)/.exec(head)?.[1];
  return unit !== undefined && /^[A-Za-z%/.µ]{1,16}$/.test(unit) ? unit : usual;
}
