/**
 * The SVG emitter and the benchmarks' ratio chart: every value escaped,
 * what XML cannot hold refused, numbers finite, and the bars as data.
 */
import { svgNumber, svgText } from '../../src/emit/svg';
import { ratioChartSvg } from '../../bench/chart';

describe('svgText and svgNumber', () => {
  it('escapes markup and quotes, refuses what XML cannot hold', () => {
    expect(svgText(`a<b>&"c"'d'`)).toBe('a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;');
    expect(() => svgText('bell\x07')).toThrow(/SVG cannot hold/);
    expect(() => svgText('nul\0')).toThrow(/SVG cannot hold/);
    expect(() => svgText('\ud800')).toThrow(/lone surrogate/);
    // As references: an XML parser would turn them into spaces in an attribute, and CR into LF anywhere.
    expect(svgText('tab\tand\nnewline\r')).toBe('tab&#9;and&#10;newline&#13;');
  });
  it('writes finite numbers only, with at most the digits asked', () => {
    expect(svgNumber(1.23456)).toBe('1.23');
    expect(svgNumber(3)).toBe('3');
    expect(() => svgNumber(NaN)).toThrow(/not a finite number/);
    expect(() => svgNumber(Infinity)).toThrow(/not a finite number/);
  });
});

describe('ratioChartSvg', () => {
  it('draws one bar per ratio, grouped, labels escaped, a bar over its target in red', () => {
    const svg = ratioChartSvg('bench <1>', [
      { group: 'one read', label: 'overhead, 1 GiB', ratio: 1.04, target: 1.1, baseline: 'docker save | mksquashfs' },
      { group: 'one read', label: 'convert & co', ratio: 1.2, target: 1.05 },
      { group: 'steps', label: 'executed over distinct', ratio: 1 },
    ]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('bench &lt;1&gt;');
    expect(svg).toContain('convert &amp; co');
    expect(svg.match(/<rect /g)).toHaveLength(3);
    expect(svg.match(/fill="#c54"/g)).toHaveLength(1);
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2);
    expect(svg.indexOf('>one read<')).toBeLessThan(svg.indexOf('>steps<'));
  });
  it('refuses a ratio that is not a number rather than drawing it', () => {
    expect(() => ratioChartSvg('t', [{ group: 'g', label: 'l', ratio: NaN }])).toThrow(/finite/);
  });
});
