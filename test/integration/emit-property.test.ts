/**
 * A seeded generative check of every emitter in src/emit/, with the real
 * language as the oracle. Values are drawn from a grammar of dangerous
 * pieces (test/support/hostile-strings.ts, `PIECE_CLASSES`): each piece
 * once on its own, then a few hundred seeded mixes. For each emitter a
 * value is either read back exactly by the language or refused with one
 * line (an InputError, exit 2); anything else is a defect. Each oracle
 * starts once: one bash, one lua (the Lua Lmod runs), one python3 (with
 * ast.literal_eval, html.parser and an XML parser), one docker build.
 */
import { spawn } from 'node:child_process';
import { DockerfileParser, type Env, type Label } from 'dockerfile-ast';
import Docker from 'dockerode';
import MarkdownIt from 'markdown-it';
import { parse, type DefaultTreeAdapterMap } from 'parse5';
import * as tar from 'tar-stream';
import { isSifkitError } from '../../src/errors';
import { bashWord, commandLine, fillShell, shDoubleQuoted } from '../../src/emit/bash';
import { checkDockerfileLines, dockerfileString } from '../../src/emit/dockerfile';
import { htmlText } from '../../src/emit/html';
import { luaString } from '../../src/emit/lua';
import { fillMarkdown, mdCode, mdText } from '../../src/emit/markdown';
import { pyString } from '../../src/emit/python';
import { sbatchOption, slurmJobName, slurmPartition } from '../../src/emit/sbatch';
import { svgText } from '../../src/emit/svg';
import { terminalBlock, terminalLine, terminalMessage } from '../../src/emit/terminal';
import { grammarValues, seedOfRun, lengthPrefixed } from '../support/hostile-strings';

jest.setTimeout(120_000);

const SEED = seedOfRun('emit-property');
/** Every piece alone, then seeded mixes: a few hundred values in all. */
const VALUES = grammarValues(SEED, 300);

/** Runs `cmd args` with `input` on stdin; its stdout, or a rejection naming its stderr. */
function run(cmd: string, args: string[], input: string | Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH, LC_ALL: 'C.UTF-8' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(new Error(`${cmd} exited ${code}: ${Buffer.concat(err).toString().slice(0, 2000)}`)),
    );
    p.stdin.end(input);
  });
}

/** One value's fate with one emitter: its output, or refused (asserted to be one line, exit 2). */
function emitOrRefuse(emit: (v: string) => string, v: string): string | undefined {
  try {
    return emit(v);
  } catch (e) {
    if (!isSifkitError(e) || e.exitCode !== 2 || /[\n\r\u2028\u2029\u0085]/.test(e.message))
      throw new Error(`${JSON.stringify(v)}: not refused with one line: ${String(e)}`);
    return undefined;
  }
}

/** Splits the values an emitter takes from those it refuses. */
function sort(emit: (v: string) => string): { taken: Array<[string, string]>; refused: string[] } {
  const taken: Array<[string, string]> = [];
  const refused: string[] = [];
  for (const v of VALUES) {
    const out = emitOrRefuse(emit, v);
    if (out === undefined) refused.push(v);
    else taken.push([v, out]);
  }
  return { taken, refused };
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Values every emitter must refuse (no file can hold them) are refused. */
function refusesLoneSurrogates(refused: string[]): void {
  expect(VALUES.filter((v) => LONE_SURROGATE.test(v)).filter((v) => !refused.includes(v))).toEqual([]);
}

const splitNul = (b: Buffer): string[] => b.toString('utf8').split('\0').slice(0, -1);

describe('bash, through one bash process', () => {
  it('bashWord, shDoubleQuoted (also as ${X:-WORD}), fillShell and commandLine: each value back exactly, or refused for NUL', async () => {
    const word = sort((v) => bashWord(v));
    const dq = sort((v) => shDoubleQuoted(v));
    const filled = sort((v) => fillShell("printf '%s\\0' {v} {n}", { v, n: 7 }, 'template'));
    const line = sort((v) => commandLine(['printf', '%s\\0', v]));
    for (const s of [word, dq, filled, line]) {
      refusesLoneSurrogates(s.refused);
      for (const v of s.refused) expect(LONE_SURROGATE.test(v) || v.includes('\0')).toBe(true);
    }
    const script = [
      'set -eu',
      ...word.taken.map(([, e]) => `printf '%s\\0' ${e}`),
      ...dq.taken.map(([, e]) => `printf '%s\\0' ${e}; unset w; printf '%s\\0' "\${w:-${e}}"`),
      ...filled.taken.map(([, e]) => e),
      ...line.taken.map(([, e]) => e),
      '',
    ].join('\n');
    const back = splitNul(await run('bash', ['-s'], script));
    expect(back).toEqual([
      ...word.taken.map(([v]) => v),
      ...dq.taken.flatMap(([v]) => [v, v]),
      ...filled.taken.flatMap(([v]) => [v, '7']),
      ...line.taken.map(([v]) => v),
    ]);
  });
});

describe('Lua, through one process of the Lua Lmod runs', () => {
  it('luaString: every value back byte for byte (Lua strings hold any byte)', async () => {
    const { taken, refused } = sort((v) => luaString(v));
    refusesLoneSurrogates(refused);
    expect(refused.filter((v) => !LONE_SURROGATE.test(v))).toEqual([]);
    // Each value as its length and its bytes: Lua strings hold NUL too.
    const chunk = taken.map(([, e]) => `do local v = ${e}; io.write(#v, ":", v) end`).join('\n');
    const out = await run('lua5.3', ['-'], chunk);
    expect(lengthPrefixed(out)).toEqual(taken.map(([v]) => v));
  });
});

/**
 * One python3 process: ast.literal_eval of each Python literal; html.parser
 * over the HTML emitter's text and attributes; an XML parser over the SVG
 * emitter's text and attributes (XML normalizes white space in attributes
 * and line ends everywhere, so what survives it is the test).
 */
const PY_ORACLE = String.raw`
import ast, json, sys
from html.parser import HTMLParser
import xml.etree.ElementTree as ET
job = json.load(sys.stdin)
out = {'py': [ast.literal_eval(e) for e in job['py']]}
class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.items = []
        self.tags = []
        self.text = None
    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == 'p':
            self.items.append([dict(attrs).get('title'), ''])
    def handle_data(self, data):
        if self.items:
            self.items[-1][1] += data
p = P()
p.feed('<body>' + ''.join('<p title="%s">%s</p>' % (e, e) for e in job['html']) + '</body>')
p.close()
out['html'] = p.items
out['htmlTags'] = sorted(set(p.tags))
root = ET.fromstring('<svg>' + ''.join('<text title="%s">%s</text>' % (e, e) for e in job['svg']) + '</svg>')
out['svg'] = [[t.get('title'), t.text or ''] for t in root]
sys.stdout.write(json.dumps(out))
`;

describe('Python, HTML and SVG, through one python3 process', () => {
  it('pyString (ast.literal_eval), htmlText (html.parser), svgText (an XML parser): every value back exactly, or refused', async () => {
    const py = sort((v) => pyString(v));
    const html = sort((v) => htmlText(v));
    const svg = sort((v) => svgText(v));
    for (const s of [py, html, svg]) refusesLoneSurrogates(s.refused);
    expect(py.refused.filter((v) => !LONE_SURROGATE.test(v))).toEqual([]);
    const answer = JSON.parse(
      (
        await run(
          'python3',
          ['-c', PY_ORACLE],
          JSON.stringify({
            py: py.taken.map(([, e]) => e),
            html: html.taken.map(([, e]) => e),
            svg: svg.taken.map(([, e]) => e),
          }),
        )
      ).toString('utf8'),
    ) as { py: string[]; html: Array<[string, string]>; htmlTags: string[]; svg: Array<[string, string]> };
    expect(answer.py).toEqual(py.taken.map(([v]) => v));
    expect(answer.htmlTags).toEqual(['body', 'p']);
    expect(answer.html).toEqual(html.taken.map(([v]) => [v, v]));
    expect(answer.svg).toEqual(svg.taken.map(([v]) => [v, v]));
  });

  it('htmlText, also read by parse5 (the HTML5 parsing algorithm): one element each, text and attribute exact', () => {
    const { taken } = sort((v) => htmlText(v));
    const doc = parse(`<!doctype html><body>${taken.map(([, e]) => `<p title="${e}">${e}</p>`).join('')}</body>`);
    const ps = elements(doc).filter((n) => n.tagName === 'p');
    expect(
      elements(doc)
        .map((n) => n.tagName)
        .filter((t) => !['html', 'head', 'body', 'p'].includes(t)),
    ).toEqual([]);
    expect(ps.map((p) => [p.attrs.find((a) => a.name === 'title')?.value, textOf(p)])).toEqual(
      taken.map(([v]) => [v, v]),
    );
  });
});

type Element = DefaultTreeAdapterMap['element'];
type Node = DefaultTreeAdapterMap['node'];
function elements(n: Node, out: Element[] = []): Element[] {
  if ('tagName' in n) out.push(n);
  if ('childNodes' in n) for (const c of n.childNodes) elements(c, out);
  return out;
}
function textOf(n: Node): string {
  if (n.nodeName === '#text') return (n as DefaultTreeAdapterMap['textNode']).value;
  if (n.nodeName === '#comment') return '';
  return 'childNodes' in n ? n.childNodes.map(textOf).join('') : '';
}

describe('Markdown, rendered by markdown-it and read as HTML by parse5', () => {
  // html: true, as GitHub and most renderers take raw HTML: a value must never become it.
  const md = new MarkdownIt({ html: true });
  /** What a reader sees of a rendered page: its elements, and the text of each p, h1, td and code (HTML turns CR into LF). */
  const seen = (markdown: string) => {
    const all = elements(parse(md.render(markdown)));
    const texts = all
      .filter((e) => ['p', 'h1', 'td', 'code'].includes(e.tagName))
      .map((e) => `${e.tagName}:${textOf(e)}`);
    return { tags: all.map((e) => e.tagName).join(' '), texts };
  };
  const asShown = (v: string) => v.replace(/\r\n?/g, '\n');

  it('mdText as prose and in a table cell, mdCode as a code span: text, never markup', () => {
    const prose = sort((v) => mdText(v));
    const code = sort((v) => mdCode(v));
    refusesLoneSurrogates(prose.refused);
    refusesLoneSurrogates(code.refused);
    for (const [v, e] of prose.taken)
      expect([v, seen(`X${e}X\n\n| a |\n|---|\n| ${e} |\n`)]).toEqual([
        v,
        {
          tags: 'html head body p table thead tr th tbody tr td',
          texts: [`p:X${asShown(v)}X`, `td:${asShown(v)}`],
        },
      ]);
    for (const [v, e] of code.taken)
      expect([v, seen(`a ${e} b\n`)]).toEqual([
        v,
        { tags: 'html head body p code', texts: [`p:a ${v} b`, `code:${v}`] },
      ]);
  });

  // A template line as a recipe's USER.md may have it: the value lands in prose, a code span, a fence, a comment.
  const TEMPLATE = '<!-- for {{ a }} -->\n# {{ a }}\n\nRun `{{ a }}` now.\n\n```\nmodule load {{ a }}\n```\n';
  it('fillMarkdown: each value in prose, code span, fence and comment shows as text in its place, or is refused', () => {
    const { taken } = sort((v) => fillMarkdown(TEMPLATE, { a: v }, 'USER.md'));
    expect(taken.length).toBeGreaterThan(20);
    for (const [v, e] of taken)
      expect([v, seen(e)]).toEqual([
        v,
        {
          tags: 'html head body h1 p code pre code',
          texts: [`h1:${asShown(v)}`, `p:Run ${v} now.`, `code:${v}`, `code:module load ${v}\n`],
        },
      ]);
  });

  it('fillMarkdown refuses a placeholder where a value would be HTML or a link, whatever the value', () => {
    for (const t of [
      '<div>\n{{ a }}\n</div>\n',
      '<details><summary>{{ a }}</summary>\n',
      'See <a title="{{ a }}">here</a>.\n',
      // Backticks are no code span inside a tag that started first: `" onmouseover="x` would be an attribute.
      'See <a title="`{{ a }}`">here</a>.\n',
      '<a title="`{{ a }}`">here</a>\n',
      'See [the docs]({{ a }}).\n',
      'See <{{ a }}>.\n',
      '[docs]: {{ a }}\n',
    ])
      expect(() => fillMarkdown(t, { a: 'x' }, 'USER.md')).toThrow(/^USER.md line \d+: placeholder \{\{ a \}\} is in /);
  });
});

describe('Dockerfile, read by dockerfile-ast and by a real docker build', () => {
  const { taken, refused } = sort((v) => dockerfileString(v));

  it('dockerfileString: one LABEL and one ENV each, read back exactly by the parser; refused only for what a line cannot hold', () => {
    refusesLoneSurrogates(refused);
    for (const v of refused)
      expect(LONE_SURROGATE.test(v) || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(v)).toBe(true);
    const text = `FROM scratch\n${taken.map(([, e], i) => `LABEL k${i}=${e}\nENV E${i}=${e}`).join('\n')}\n`;
    const ins = DockerfileParser.parse(text).getInstructions();
    const labels = ins.filter((i) => i.getKeyword() === 'LABEL') as Label[];
    const envs = ins.filter((i) => i.getKeyword() === 'ENV') as Env[];
    // dockerfile-ast unescapes \\ and \"; \$ is the builder's variable step, done here as the builder does.
    const value = (p: { getValue(): string | null }) => (p.getValue() ?? '').replace(/\\\$/g, '$');
    expect(labels.map((l) => l.getProperties().map(value))).toEqual(taken.map(([v]) => [v]));
    expect(envs.map((l) => l.getProperties().map(value))).toEqual(taken.map(([v]) => [v]));
  });

  it('refuses a word or a rendered line longer than the builder reads (65,535 bytes), with one line', () => {
    const long = '\u00e9'.repeat(40_000);
    expect(() => dockerfileString(long, 'label k')).toThrow(
      /^label k: .* is 80002 bytes quoted; a Dockerfile line holds at most 65535$/,
    );
    expect(dockerfileString('x'.repeat(65_533))).toHaveLength(65_535);
    expect(() => checkDockerfileLines(`FROM scratch\nRUN echo ${'1'.repeat(65_530)}\n`, 'r v')).toThrow(
      /^r v: line 2 is 65539 bytes; the Docker builder reads lines of at most 65535$/,
    );
  });

  it('a docker build of FROM scratch with every taken value as a LABEL and an ENV: the image config holds each exactly', async () => {
    const docker = new Docker();
    const tag = `sifkit-emit-property:${SEED}-${process.pid}`;
    // One instruction of each kind (a line per value), so the build commits twice, not once per value.
    const labelLines = taken.map(([, e], i) => `k${i}=${e}`).join(' \\\n  ');
    const envLines = taken.map(([, e], i) => `E${i}=${e}`).join(' \\\n  ');
    const dockerfile = `FROM scratch\nLABEL io.sifkit.test=emit-property \\\n  ${labelLines}\nENV ${envLines}\n`;
    const pack = tar.pack();
    pack.entry({ name: 'Dockerfile' }, dockerfile);
    pack.finalize();
    const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
      t: tag,
      rm: true,
      forcerm: true,
    });
    const lines = await new Promise<Array<{ error?: string }>>((resolve, reject) =>
      docker.modem.followProgress(stream, (e: Error | null, r: Array<{ error?: string }>) =>
        e ? reject(e) : resolve(r),
      ),
    );
    // The engine reports a failed build inside the stream (HTTP 200): it must not have.
    expect(lines.filter((l) => l.error).map((l) => l.error)).toEqual([]);
    try {
      const config = (await docker.getImage(tag).inspect()).Config;
      expect(taken.map((_, i) => config.Labels[`k${i}`])).toEqual(taken.map(([v]) => v));
      const env = new Map(config.Env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      expect(taken.map((_, i) => env.get(`E${i}`))).toEqual(taken.map(([v]) => v));
    } finally {
      await docker.getImage(tag).remove({ force: true });
    }
  });
});

describe('the terminal and the sbatch line', () => {
  it('terminalLine/Block/Message: nothing that moves the cursor, breaks the line or reorders text reaches the terminal', () => {
    const moves = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
    for (const v of VALUES) {
      for (const shown of [terminalLine(v), terminalMessage(v)])
        expect([v, moves.test(shown) || shown.includes('\n')]).toEqual([v, false]);
      expect([v, moves.test(terminalBlock(v))]).toEqual([v, false]);
    }
  });

  it('an sbatch option, partition or job name is taken only as one plain word (sbatch splits at white space)', () => {
    for (const check of [
      (v: string) => sbatchOption(`--comment=${v}`),
      (v: string) => slurmPartition(v),
      (v: string) => slurmJobName(v),
    ]) {
      const { taken } = sort(check);
      for (const [v, e] of taken) expect([v, /^[\x21-\x7e]+$/.test(e) && !/["'\\#$`;]/.test(e)]).toEqual([v, true]);
    }
  });
});
