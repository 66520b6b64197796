/**
 * The benchmarks' ratio chart: one SVG of horizontal bars, sifkit's time
 * (or memory) over its baseline's, each beside its target. A bench adds
 * its figures as data, one `RatioBar` each, grouped by `group`; every
 * value goes through the SVG emitter (src/emit/svg.ts).
 */
import { promises as fs } from 'node:fs';
import { svgNumber, svgText } from '../src/emit/svg';

export interface RatioBar {
  /** The figure's family, a heading in the chart (e.g. "one read", "steps"). */
  group: string;
  /** What was measured, e.g. "post-build overhead, 1 GiB". */
  label: string;
  /** sifkit over the baseline (1.00: as fast as the baseline). */
  ratio: number;
  /** The largest ratio the target allows, drawn as a mark. */
  target?: number;
  /** What the baseline was, said under the label. */
  baseline?: string;
}

const ROW = 34;
const LEFT = 330;
const WIDTH = 760;
const BAR = WIDTH - LEFT - 90;

/** The chart as SVG text. */
export function ratioChartSvg(title: string, bars: readonly RatioBar[]): string {
  const max = Math.max(1.5, ...bars.map((b) => Math.max(b.ratio, b.target ?? 0))) * 1.05;
  const x = (r: number) => LEFT + (r / max) * BAR;
  const out: string[] = [];
  let y = 40;
  const groups = [...new Set(bars.map((b) => b.group))];
  for (const g of groups) {
    out.push(`<text x="10" y="${svgNumber(y)}" font-weight="bold">${svgText(g, 'group')}</text>`);
    y += 12;
    for (const b of bars.filter((x) => x.group === g)) {
      const met = b.target === undefined || b.ratio <= b.target;
      out.push(
        `<text x="10" y="${svgNumber(y + 14)}">${svgText(b.label, 'label')}</text>`,
        b.baseline
          ? `<text x="10" y="${svgNumber(y + 27)}" font-size="10" fill="#555">against ${svgText(b.baseline, 'baseline')}</text>`
          : '',
        `<rect x="${LEFT}" y="${svgNumber(y + 3)}" width="${svgNumber(x(b.ratio) - LEFT)}" height="18" fill="${met ? '#4a8' : '#c54'}"/>`,
        `<text x="${svgNumber(x(b.ratio) + 4)}" y="${svgNumber(y + 17)}">${svgText(b.ratio.toFixed(2), 'ratio')}×</text>`,
      );
      if (b.target !== undefined)
        out.push(
          `<line x1="${svgNumber(x(b.target))}" x2="${svgNumber(x(b.target))}" y1="${svgNumber(y)}" y2="${svgNumber(y + 24)}" stroke="#000" stroke-dasharray="3 2"/>`,
        );
      y += ROW;
    }
    y += 8;
  }
  // The baseline itself: ratio 1.
  const one = svgNumber(x(1));
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${svgNumber(height)}" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${svgText(title, 'title')}</text>`,
    `<line x1="${one}" x2="${one}" y1="28" y2="${svgNumber(height - 10)}" stroke="#999"/>`,
    `<text x="${one}" y="${svgNumber(height - 1)}" font-size="10" text-anchor="middle">1.00 = baseline; dashed: target</text>`,
    ...out.filter(Boolean),
    '</svg>',
    '',
  ].join('\n');
}

/** Writes the chart to `file`. */
export async function writeRatioChart(file: string, title: string, bars: readonly RatioBar[]): Promise<void> {
  await fs.writeFile(file, ratioChartSvg(title, bars));
}
