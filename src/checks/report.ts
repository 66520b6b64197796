/**
 * The test report: one self-contained HTML page (inline SVG, no scripts,
 * nothing fetched) with, per benchmark, latency or bandwidth against
 * message size, one line per image version, and the pass/fail table.
 * Pure: results in, HTML out.
 */
import { htmlText } from '../emit/html';
import type { TestRun } from './results';
import { describeRegression, worstRegression } from './gate';
import { runVerdict } from '../validate/schemas/results';

const COLOURS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
];

/** Every value the page shows (names, units, reasons, the ledger's records) enters through the HTML emitter. */
const esc = (s: string): string => htmlText(s);

function sizeLabel(n: number): string {
  if (n >= 1 << 20) return `${n / (1 << 20)}M`;
  if (n >= 1024) return `${n / 1024}K`;
  return String(n);
}

export interface Series {
  label: string;
  points: Array<{ size: number; value: number }>;
}

/** A log-log line chart of value against message size. */
export function chartSvg(title: string, unit: string, series: Series[]): string {
  const W = 720;
  // One legend line per series, below the axis title: labels are long (stems) and must not overlap.
  const legend = 16 * series.length;
  const H = 340 + legend;
  const m = { l: 70, r: 20, t: 36, b: 56 + legend };
  const all = series.flatMap((s) => s.points).filter((p) => p.size > 0 && p.value > 0);
  if (!all.length) return '';
  const lx = (v: number) => Math.log2(v);
  const ly = (v: number) => Math.log10(v);
  const x0 = lx(Math.min(...all.map((p) => p.size)));
  const x1 = Math.max(x0 + 1, lx(Math.max(...all.map((p) => p.size))));
  const y0 = Math.floor(ly(Math.min(...all.map((p) => p.value))));
  const y1 = Math.max(y0 + 1, Math.ceil(ly(Math.max(...all.map((p) => p.value)))));
  const X = (v: number) => m.l + ((lx(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v: number) => H - m.b - ((ly(v) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`,
  ];
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (let e = Math.ceil(x0); e <= Math.floor(x1); e += Math.max(1, Math.ceil((x1 - x0) / 12))) {
    const x = X(2 ** e);
    parts.push(
      `<line x1="${x}" y1="${m.t}" x2="${x}" y2="${H - m.b}" stroke="#eee"/><text x="${x}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${sizeLabel(2 ** e)}</text>`,
    );
  }
  for (let e = y0; e <= y1; e++) {
    const y = Y(10 ** e);
    parts.push(
      `<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#eee"/><text x="${m.l - 6}" y="${y + 4}" text-anchor="end" font-size="11">${10 ** e >= 1 ? 10 ** e : (10 ** e).toPrecision(1)}</text>`,
    );
  }
  parts.push(
    `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`,
  );
  parts.push(
    `<text x="${(W + m.l) / 2}" y="${H - m.b + 34}" text-anchor="middle" font-size="12">message size (bytes)</text>`,
  );
  parts.push(
    `<text transform="translate(16 ${(H - m.b + m.t) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(unit)}</text>`,
  );
  series.forEach((s, i) => {
    const c = COLOURS[i % COLOURS.length];
    const pts = s.points.filter((p) => p.size > 0 && p.value > 0).sort((a, b) => a.size - b.size);
    parts.push(
      `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${X(p.size).toFixed(1)},${Y(p.value).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const p of pts)
      parts.push(
        `<circle cx="${X(p.size).toFixed(1)}" cy="${Y(p.value).toFixed(1)}" r="2.5" fill="${c}"><title>${esc(s.label)}: ${p.size} B → ${p.value} ${esc(unit)}</title></circle>`,
      );
    const ly2 = H - m.b + 54 + i * 16;
    const lx2 = m.l;
    parts.push(
      `<line x1="${lx2}" y1="${ly2 - 4}" x2="${lx2 + 18}" y2="${ly2 - 4}" stroke="${c}" stroke-width="3"/><text x="${lx2 + 24}" y="${ly2}" font-size="11">${esc(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The newest run of each image, oldest image first. */
export function latestRuns(runs: TestRun[]): TestRun[] {
  const byImage = new Map<string, TestRun>();
  for (const r of runs) {
    const prev = byImage.get(r.image);
    if (!prev || prev.finished < r.finished) byImage.set(r.image, r);
  }
  return [...byImage.values()].sort((a, b) => (a.started < b.started ? -1 : 1));
}

/** The parameters whose values differ between the runs' images, in the order first seen. */
export function varyingParams(runs: TestRun[]): string[] {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.params ?? {})))];
  return names.filter((n) => new Set(runs.map((r) => r.params?.[n])).size > 1);
}

/** What the report knows besides the runs. */
export interface ReportContext {
  /** Images a `sif-images/` link of the tree points at (what users get). */
  linked?: ReadonlySet<string>;
}

const VERDICT_TEXT = { passed: 'PASSED', failed: 'FAILED', refused: 'REFUSED' } as const;

function gateCell(r: TestRun): string {
  const g = r.gate;
  if (!g) return '<td class="none" title="nothing to compare with">–</td>';
  if (g.verdict === 'off') return '<td class="none">off</td>';
  const against = `against ${g.baseline ?? 'the baseline'}, tolerance ${(g.tolerance * 100).toFixed(0)}%`;
  if (g.verdict === 'passed') return `<td class="pass" title="${esc(against)}">passed</td>`;
  const worst = worstRegression(g.regressions)!;
  const why = `${g.regressions.length} figure(s) worse or not measured ${against}; worst ${describeRegression(worst)}`;
  const upTo = worst.worseBy === null ? 'a size not measured' : `up to ${(worst.worseBy * 100).toFixed(0)}%`;
  return `<td class="fail" title="${esc(why)}">REFUSED<br><small>${g.regressions.length} worse, ${esc(upTo)}</small></td>`;
}

export function reportHtml(runs: TestRun[], generated = new Date(), context: ReportContext = {}): string {
  const latest = latestRuns(runs);
  const checkNames = [...new Set(latest.flatMap((r) => r.checks.map((c) => c.name)))];
  // Versions told apart by what differs between them (rocm 6.2.0 …), else by stem.
  const varying = varyingParams(latest);
  const label = (r: TestRun) =>
    `${varying.length && r.params ? varying.map((n) => `${n} ${r.params?.[n] ?? '-'}`).join(', ') : r.stem.replace(/^lumi-/, '')} (${r.dockerhash})`;
  const charts = checkNames
    .map((name) => {
      const withFigures = latest
        .map((r) => ({ r, c: r.checks.find((c) => c.name === name) }))
        .filter((x) => x.c?.figures?.points.length);
      if (!withFigures.length) return '';
      const f = withFigures[0].c!.figures!;
      const kind = f.kind === 'bandwidth' ? 'bandwidth' : 'latency';
      const title = `${name}: ${kind} against message size${f.kind === 'latency' ? ' (lower is better)' : ' (higher is better)'}`;
      return `<section class="chart">${chartSvg(
        title,
        f.unit || (kind === 'latency' ? 'us' : 'MB/s'),
        withFigures.map(({ r, c }) => ({ label: label(r), points: c!.figures!.points })),
      )}</section>`;
    })
    .join('\n');
  const cell = (r: TestRun, name: string) => {
    const c = r.checks.find((x) => x.name === name);
    if (!c) return '<td class="none">–</td>';
    const text = esc(c.passed ? 'pass' : c.outcome === 'failed' ? 'FAIL' : c.outcome.toUpperCase());
    return `<td class="${c.passed ? 'pass' : 'fail'}" title="${esc(c.reason ?? '')}">${text}<br><small>${(c.durationMs / 1000).toFixed(1)} s</small></td>`;
  };
  const linkedCell = (r: TestRun) =>
    context.linked
      ? `<td class="${context.linked.has(r.image) ? 'pass' : 'none'}">${context.linked.has(r.image) ? 'linked' : '–'}</td>`
      : '';
  const rows = latest
    .map((r) => {
      const verdict = runVerdict(r);
      return `<tr><th scope="row">${esc(`${r.stem.replace(/^lumi-/, '')} (${r.dockerhash})`)}</th>${varying.map((n) => `<td>${esc(r.params?.[n] ?? '-')}</td>`).join('')}${linkedCell(r)}<td>${esc(r.runner)}${r.jobId ? ` job ${esc(r.jobId)}` : ''}</td><td>${esc(r.finished.slice(0, 16).replace('T', ' '))}</td>${checkNames.map((n) => cell(r, n)).join('')}${gateCell(r)}<td class="${verdict === 'passed' ? 'pass' : 'fail'}">${VERDICT_TEXT[verdict]}</td></tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sifkit test report</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:12px 0}
th,td{border:1px solid #ccc;padding:6px 10px;text-align:center;font-size:13px}
th[scope=row]{text-align:left;font-weight:normal;font-family:monospace}
td.pass{background:#e6f4ea;color:#137333}
td.fail{background:#fce8e6;color:#a50e0e;font-weight:bold}
td.none{color:#777}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{border:1px solid #ddd;padding:6px}
</style></head>
<body>
<h1>Container test report</h1>
<p>${latest.length} image version(s), newest run of each; made ${esc(generated.toISOString().slice(0, 16).replace('T', ' '))} UTC by sifkit.</p>
<h2>Pass / fail</h2>
<table><thead><tr><th>image</th>${varying.map((n) => `<th>${esc(n)}</th>`).join('')}${context.linked ? '<th title="a sif-images/ link points at it">in sif-images</th>' : ''}<th>runner</th><th>finished</th>${checkNames.map((n) => `<th>${esc(n)}</th>`).join('')}<th>gate</th><th>overall</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Benchmarks</h2>
<div class="charts">
${charts || '<p>No benchmark figures recorded.</p>'}
</div>
</body></html>
`;
}
