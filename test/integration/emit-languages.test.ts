/**
 * One emitter per language, each against its language's own parser: for
 * 10,000 seeded hostile strings per emitter, all emitted into one artifact
 * (or a few), parsed once (`bash -n` and bash, `luac5.3 -p` and lua5.3,
 * python3's ast.parse, dockerfile-ast, parse5, markdown-it) and read back
 * exactly; what an emitter refuses is a one-line InputError. One process
 * per batch, never one per value.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { bashWord, fillShell, shDoubleQuoted, commandLine } from '../../src/emit/bash';
import { envScript, runscript } from '../../src/convert/singularity';
import { luaString } from '../../src/emit/lua';
import { pyString } from '../../src/emit/python';
import { DockerfileParser, type Label } from 'dockerfile-ast';
import MarkdownIt from 'markdown-it';
import type Token from 'markdown-it/lib/token.mjs';
import { parse, type DefaultTreeAdapterMap } from 'parse5';
import { dockerfileString } from '../../src/emit/dockerfile';
import { htmlText } from '../../src/emit/html';
import { fillMarkdown, mdCode, mdText } from '../../src/emit/markdown';
import { sampleFor, seedOfRun, lengthPrefixed } from '../support/hostile-strings';

const exec = promisify(execFile);
jest.setTimeout(180_000);

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h31-emit-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

async function runFile(cmd: string, args: string[], name: string, text: string): Promise<Buffer> {
  const file = path.join(dir, name);
  await fs.writeFile(file, text);
  const r = await exec(cmd, [...args, file], {
    encoding: 'buffer',
    maxBuffer: 1 << 28,
    env: { PATH: process.env.PATH, LC_ALL: 'C.UTF-8' },
  });
  return r.stdout;
}

describe('the bash emitter', () => {
  it('10,000 hostile values: the script passes bash -n and prints each value back exactly', async () => {
    const { taken, refused } = sampleFor((v) => bashWord(v), seedOfRun('bash'));
    expect(taken.length).toBeGreaterThan(5000);
    for (const v of refused) expect(v).toContain('\0');
    const script = `#!/bin/bash\nset -eu\n${taken.map(([, e]) => `v=${e}\nprintf '%s\\0' "$v"`).join('\n')}\n`;
    await runFile('bash', ['-n'], 'words.sh', script);
    const out = (await runFile('bash', [], 'words.sh', script)).toString('utf8').split('\0');
    expect(out.slice(0, -1)).toEqual(taken.map(([v]) => v));
  });

  it('10,000 hostile values through an operator template, filled in one pass: each placeholder one word, nothing run', async () => {
    const seed = seedOfRun('bash template');
    const { taken } = sampleFor(
      (v) => fillShell("printf '%s\\0' {path} -B {name}:/x {n}", { path: v, name: `{path}${v}`, n: 3 }, 'template'),
      seed,
    );
    const script = `#!/bin/bash\nset -eu\n${taken.map(([, e]) => e).join('\n')}\n`;
    await runFile('bash', ['-n'], 'template.sh', script);
    const out = (await runFile('bash', [], 'template.sh', script)).toString('utf8').split('\0');
    expect(out.slice(0, -1)).toEqual(taken.flatMap(([v]) => [v, '-B', `{path}${v}:/x`, '3']));
  });

  it('2,000 hostile paths in a command shown to copy (hints, resume): each pastes back as the one word it is', async () => {
    const { taken } = sampleFor((v) => commandLine(['chmod', '600', v, 'x.pem']), seedOfRun('shell command'), 2000);
    const script = `#!/bin/bash\nset -eu\nchmod() { printf '%s\\0' "$@"; }\n${taken.map(([, e]) => e).join('\n')}\n`;
    const out = (await runFile('bash', [], 'commands.sh', script)).toString('utf8').split('\0');
    expect(out.slice(0, -1)).toEqual(taken.flatMap(([v]) => ['600', v, 'x.pem']));
    expect(commandLine(['sifkit', 'init', '/srv/trees/a'])).toBe('sifkit init /srv/trees/a');
  });

  it('refuses a placeholder inside quotes, an unknown one, and unbalanced quotes', () => {
    expect(() => fillShell('cp "{path}" /b', { path: 'a' }, 'backup_command')).toThrow(/inside quotes/);
    expect(() => fillShell("cp '{path}' /b", { path: 'a' }, 'backup_command')).toThrow(/inside quotes/);
    // A here-document's body is expanded whatever its quotes: '$(id)' would run there. A template is one line.
    expect(() => fillShell('cat <<EOF\n{path}\nEOF', { path: '$(id)' }, 'backup_command')).toThrow(
      /^backup_command: .* contains a NUL character or a line break that a one-line shell template cannot hold$/,
    );
    expect(() => fillShell('cp {paht} /b', { path: 'a' }, 'backup_command')).toThrow(/unknown placeholder \{paht\}/);
    expect(() => fillShell('cp {path} "/b', { path: 'a' }, 'backup_command')).toThrow(/unbalanced/);
  });
});

describe("the double-quoted sh emitter (a SIF's environment and runscript, as apptainer writes them)", () => {
  for (const shell of ['dash', 'bash']) {
    it(`10,000 hostile values, as a word and as the default of \${NAME:-WORD}: ${shell} reads each back exactly`, async () => {
      const { taken, refused } = sampleFor((v) => shDoubleQuoted(v), seedOfRun(`sh double-quoted ${shell}`));
      expect(taken.length).toBeGreaterThan(5000);
      for (const v of refused) expect(v).toContain('\0');
      const lines = taken.map(([, e]) => `v=${e}\nprintf '%s\\0' "$v"\nunset w\nw="\${w:-${e}}"\nprintf '%s\\0' "$w"`);
      const script = `set -eu\n${lines.join('\n')}\n`;
      await runFile(shell, ['-n'], `dq-${shell}.sh`, script);
      const out = (await runFile(shell, [], `dq-${shell}.sh`, script)).toString('utf8').split('\0');
      expect(out.slice(0, -1)).toEqual(taken.flatMap(([v]) => [v, v]));
    });
  }

  it("an image's hostile ENV values and ENTRYPOINT/CMD words reach the process exactly through the SIF's scripts", async () => {
    const { taken } = sampleFor((v) => shDoubleQuoted(v), seedOfRun('sif scripts'));
    const values = taken.slice(0, 500).map(([v]) => v);
    const env = values.map((v, i) => `SIFKIT_V${i}=${v}`);
    const show = values.map((_, i) => `printf '%s\\0' "$SIFKIT_V${i}"`).join('\n');
    const envOut = (await runFile('dash', [], 'env.sh', `${envScript(env)}${show}\n`)).toString('utf8').split('\0');
    expect(envOut.slice(0, -1)).toEqual(values);
    // ENTRYPOINT printf, CMD the hostile words: the runscript passes CMD when no argument is given.
    const run = runscript({ Entrypoint: ['printf', '%s\\0'], Cmd: values.slice(0, 200) });
    const runOut = (await runFile('dash', [], 'runscript.sh', run)).toString('utf8').split('\0');
    expect(runOut.slice(0, -1)).toEqual(values.slice(0, 200));
  });
});

describe('the Lua emitter', () => {
  it('10,000 hostile values: the chunk passes luac -p and prints each value back byte for byte', async () => {
    const { taken, refused } = sampleFor((v) => luaString(v), seedOfRun('lua'));
    expect(refused).toEqual([]);
    const chunk = taken.map(([, e]) => `do local v = ${e}; io.write(#v, ":", v) end`).join('\n') + '\n';
    await runFile('luac5.3', ['-p'], 'values.lua', chunk);
    const out = await runFile('lua5.3', [], 'values.lua', chunk);
    expect(lengthPrefixed(out)).toEqual(taken.map(([v]) => v));
  });
});

describe('the Python emitter', () => {
  it('10,000 hostile values: the module passes ast.parse and holds each value exactly', async () => {
    const { taken, refused } = sampleFor((v) => pyString(v), seedOfRun('python'));
    expect(refused).toEqual([]);
    const mod = `values = [\n${taken.map(([, e]) => `    ${e},`).join('\n')}\n]\n`;
    const check = `import ast, json, sys\nsrc = open(sys.argv[1], encoding='utf-8').read()\nast.parse(src)\nns = {}\nexec(compile(src, 'values', 'exec'), ns)\nsys.stdout.write(json.dumps(ns['values']))\n`;
    await fs.writeFile(path.join(dir, 'check.py'), check);
    await fs.writeFile(path.join(dir, 'values.py'), mod);
    const r = await exec('python3', [path.join(dir, 'check.py'), path.join(dir, 'values.py')], { maxBuffer: 1 << 28 });
    expect(JSON.parse(r.stdout)).toEqual(taken.map(([v]) => v));
  });
});

type Node = DefaultTreeAdapterMap['node'];

/** The text of an element (its text nodes, in order). */
function textOf(n: Node): string {
  if (n.nodeName === '#text') return (n as DefaultTreeAdapterMap['textNode']).value;
  return 'childNodes' in n ? n.childNodes.map(textOf).join('') : '';
}

function elements(
  n: Node,
  tag: string,
  out: DefaultTreeAdapterMap['element'][] = [],
): DefaultTreeAdapterMap['element'][] {
  if ('tagName' in n && n.tagName === tag) out.push(n);
  if ('childNodes' in n) for (const c of n.childNodes) elements(c, tag, out);
  return out;
}

describe('the Dockerfile emitter', () => {
  it('10,000 hostile values: one LABEL each, read back exactly by the Dockerfile parser', () => {
    const { taken, refused } = sampleFor((v) => dockerfileString(v), seedOfRun('dockerfile'));
    expect(taken.length).toBeGreaterThan(2000);
    for (const v of refused) expect(v).toMatch(/[\u0000-\u001f\u007f]/);
    const text = `FROM scratch\n${taken.map(([, e], i) => `LABEL k${i}=${e}\nRUN true`).join('\n')}\n`;
    const labels = DockerfileParser.parse(text)
      .getInstructions()
      .filter((i) => i.getKeyword() === 'LABEL') as Label[];
    expect(labels).toHaveLength(taken.length);
    // dockerfile-ast unescapes \\ and \"; \$ is the builder's variable step, done here as the builder does.
    const back = labels.map((l) => l.getProperties().map((p) => (p.getValue() ?? '').replace(/\\\$/g, '$')));
    expect(back).toEqual(taken.map(([v]) => [v]));
    expect(text.split('\n').filter((l) => /^RUN/.test(l))).toHaveLength(taken.length);
  });
});

describe('the HTML emitter', () => {
  it('10,000 hostile values as text and as attributes: one element each, read back exactly by an HTML parser', () => {
    const { taken, refused } = sampleFor((v) => htmlText(v), seedOfRun('html'));
    expect(taken.length).toBeGreaterThan(5000);
    for (const v of refused) expect(v).toContain('\0');
    const html = `<!doctype html><html><body>${taken.map(([, e]) => `<p title="${e}">${e}</p>`).join('\n')}</body></html>`;
    const ps = elements(parse(html), 'p');
    expect(ps).toHaveLength(taken.length);
    expect(ps.map((p) => [p.attrs.find((a) => a.name === 'title')?.value, textOf(p)])).toEqual(
      taken.map(([v]) => [v, v]),
    );
    expect(elements(parse(html), 'script')).toEqual([]);
  });
});

describe('the Markdown emitter', () => {
  // Read back as Markdown: markdown-it's tokens (its HTML would add HTML's own CR handling).
  const md = new MarkdownIt({ html: true });
  const inlineText = (t: Token) =>
    (t.children ?? []).map((c) => (c.type === 'text' || c.type === 'code_inline' ? c.content : `<${c.type}>`)).join('');
  it('10,000 hostile values as prose: one paragraph each, plain text, read back exactly', () => {
    const { taken, refused } = sampleFor((v) => mdText(v), seedOfRun('markdown text'));
    expect(taken.length).toBeGreaterThan(2000);
    for (const v of refused)
      expect(v).toMatch(
        /[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]/,
      );
    const tokens = md.parse(taken.map(([, e]) => `X${e}X`).join('\n\n'), {});
    expect(tokens.map((t) => t.type).join(' ')).toBe(
      taken.map(() => 'paragraph_open inline paragraph_close').join(' '),
    );
    // Nothing but text: no HTML, link, emphasis or line break inside a paragraph.
    expect(tokens.filter((t) => t.type === 'inline').map((t) => inlineText(t).slice(1, -1))).toEqual(
      taken.map(([v]) => v),
    );
  });

  it('10,000 hostile values in a table cell and a code span: one cell each, read back exactly', () => {
    const { taken } = sampleFor((v) => `| ${mdText(v)} | ${mdCode(v)} |`, seedOfRun('markdown table'));
    expect(taken.length).toBeGreaterThan(500);
    const tokens = md.parse(`| a | b |\n|---|---|\n${taken.map(([, e]) => e).join('\n')}\n`, {});
    const cells = tokens.filter((t, i) => t.type === 'inline' && tokens[i - 1].type === 'td_open').map(inlineText);
    expect(cells).toEqual(taken.flatMap(([v]) => [v, v]));
  });

  it('fills a template by place: prose escaped, code span and fence raw but bounded, comment closed', () => {
    const t = '<!-- for {{ a }} -->\n# {{ a }}\n\nRun `{{ a }}` then:\n\n```bash\nmodule load {{ a }}\n```\n';
    const r = fillMarkdown(t, { a: 'x/1.0' }, 'USER.md');
    expect(r).toBe('<!-- for x/1.0 -->\n# x\\/1\\.0\n\nRun `x/1.0` then:\n\n```bash\nmodule load x/1.0\n```\n');
    expect(() => fillMarkdown(t, { a: 'x`<script>' }, 'USER.md')).toThrow(/USER.md \{\{ a \}\}/);
    expect(() => fillMarkdown(t, { a: 'evil\ncurl x | sh' }, 'USER.md')).toThrow(/line break/);
    expect(() => fillMarkdown('{{ b }}', { a: '' }, 'USER.md')).toThrow(/unknown placeholder/);
    expect(fillMarkdown('a\n\n{{ a }}\n', { a: '<script>alert(1)</script>' }, 'USER.md')).toBe(
      'a\n\n\\<script\\>alert\\(1\\)\\<\\/script\\>\n',
    );
    // A tilde fence is closed by ~~~ as a backtick fence by ```: neither may come from a value.
    expect(() => fillMarkdown('~~~\n{{ a }}\nrm -rf x\n~~~\n', { a: '~~~' }, 'USER.md')).toThrow(/~~~/);
    // A span opened with two backticks holds one: the value is in the span, shown raw.
    expect(fillMarkdown('`` {{ a }} `` and `{{ a }}`', { a: 'x*y*' }, 'USER.md')).toBe('`` x*y* `` and `x*y*`');
    // A backtick with no closer is literal: the value after it is prose, escaped.
    expect(fillMarkdown('a ` {{ a }}', { a: '[x](javascript:alert(1))' }, 'USER.md')).toBe(
      'a ` \\[x\\]\\(javascript\\:alert\\(1\\)\\)',
    );
    // Bidirectional controls would reorder what a reader sees: refused everywhere.
    expect(() => mdText('run \u202esh | x')).toThrow(/bidirectional/);
    expect(() => mdCode('module load \u2066x')).toThrow(/bidirectional/);
  });
});
