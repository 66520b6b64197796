/**
 * The easybuild and pull-request texts take every value through their
 * language's emitter: USER.md's own placeholders win over parameters, a
 * hostile value lands as text or is refused, and the pull request's body
 * read back by a Markdown parser holds the image's output as plain text.
 */
import MarkdownIt from 'markdown-it';
import { bashWord } from '../../src/emit/bash';
import { dockerfileString } from '../../src/emit/dockerfile';
import { htmlText } from '../../src/emit/html';
import { luaString } from '../../src/emit/lua';
import { mdRaw, mdText } from '../../src/emit/markdown';
import { pyString } from '../../src/emit/python';
import { easyconfigText, userPage } from '../../src/easybuild/easyconfig';
import type { ImageFacts } from '../../src/easybuild/facts';
import { prBody } from '../../src/github/pr-content';
import { loadRecipe } from '../../src/recipe/load';
import { sifFileName, variantNames } from '../../src/recipe/names';
import { resolveValues } from '../../src/recipe/params';
import type { TestRun } from '../../src/validate/schemas/results';

async function facts(over: Partial<ImageFacts> = {}): Promise<ImageFacts> {
  const recipe = await loadRecipe('mpi4py');
  const values = resolveValues(recipe, {});
  const names = variantNames(recipe.naming, values, '20241007');
  const stem = `lumi-mpi4py-rocm-${values.rocm}-python-${values.python}-mpi4py-${values.mpi4py}`;
  return {
    sifName: sifFileName(stem, '0123456789ab'),
    sifPath: '/nowhere',
    stem,
    dockerhash: '0123456789ab',
    recipe,
    values,
    appVersion: values.mpi4py,
    names,
    date: '20241007',
    labels: {},
    ...over,
  };
}

describe('USER.md', () => {
  it('keeps its own placeholders: a parameter named root or module does not replace them', async () => {
    const f = await facts();
    const page = userPage('`{{ root }}` and\n\n```\nmodule load LUMI {{ module }}\n```\n', {
      ...f,
      values: { ...f.values, root: '/evil', module: 'evil/1.0' },
    });
    expect(page).toBe(`\`/appl/local/containers\` and\n\n\`\`\`\nmodule load LUMI ${f.names.module}\n\`\`\`\n`);
  });

  it('refuses a WITH_CONDA that would leave its code span, in one line', async () => {
    const f = await facts({ withConda: 'x` <script>alert(1)</script>' });
    expect(() => userPage('Run `{{ with_conda }}` first.\n', f)).toThrow(
      /^recipe mpi4py: USER.md \{\{ with_conda \}\}: "x` <script>alert\(1\)<\/script>" contains a backtick/,
    );
  });
});

describe('the EasyConfig', () => {
  it('refuses a description EasyBuild would not keep as text, naming the recipe', async () => {
    const f = await facts();
    expect(() => easyconfigText({ ...f, recipe: { ...f.recipe, description: 'a ]==] b' } })).toThrow(
      /^recipe mpi4py: description "a \]==\] b" holds a Lua long bracket/,
    );
    expect(() => easyconfigText({ ...f, recipe: { ...f.recipe, description: 'a %(installdir)s b' } })).toThrow(
      /EasyBuild template/,
    );
  });
});

describe('the signing key, named where users read', () => {
  const dsse = {
    fingerprint: 'SHA256:x6l8ZbWbh+Y1nYBVEl3U1ZOqMStHZR4ZdBIFaQrR+IA',
    format: 'dsse',
    how: 'key',
  } as const;

  it('the EasyConfig names the fingerprint, and its help (a Python string) the command that checks the file', async () => {
    const f = await facts({ signedBy: [{ ...dsse, rel: '.sifkit/keys/build.pub.pem' }] });
    const text = easyconfigText(f);
    expect(text).toContain(`# Signed (DSSE) by the key ${dsse.fingerprint}: the module help says how to verify.`);
    const description = /^description = (.*)$/m.exec(text)![1];
    expect(description).toContain('singularity verify --key /appl/local/containers/.sifkit/keys/build.pub.pem $SIF');
    expect(description).toContain(`(signing key fingerprint: ${dsse.fingerprint})`);
    // An unsigned image's EasyConfig says nothing of signatures.
    expect(easyconfigText(await facts())).not.toMatch(/[Ss]igned|verify/);
  });

  it('USER.md gains a section with both commands in code blocks, read back by a Markdown parser', async () => {
    const f = await facts({
      signedBy: [{ fingerprint: 'A'.repeat(40), format: 'pgp', how: 'keyring', rel: '.sifkit/keys/release.asc' }],
    });
    const page = userPage('# Page\n', f);
    const tokens = new MarkdownIt().parse(page, {});
    const code = tokens.filter((t) => t.type === 'fence').map((t) => t.content);
    expect(code).toEqual([
      'singularity key import /appl/local/containers/.sifkit/keys/release.asc; singularity verify $SIF\n',
      'sifkit verify-signature $SIF --keyring /appl/local/containers/.sifkit/keys/release.asc\n',
    ]);
    expect(page).toContain(`\`${'A'.repeat(40)}\` (PGP)`);
    expect(page).not.toContain('Ask LUMI User Support');
  });

  it('a key outside the tree: the fingerprint, and a request for the key instead of a path', async () => {
    const f = await facts({ signedBy: [{ ...dsse }] });
    expect(userPage('# Page\n', f)).toContain('Ask LUMI User Support for this public key.');
    expect(easyconfigText(f)).toContain('singularity verify --key build.pub.pem $SIF');
  });
});

describe("the pull request's body", () => {
  it("holds a check's name, reason and unit from the image's output as plain text", async () => {
    const f = await facts({ sha256: 'a'.repeat(64) });
    const reason = 'output lacks "ok" | <img src=x onerror=alert(1)> [link](http://evil) **bold**\n# heading';
    const run: TestRun = {
      image: f.sifName,
      stem: f.stem,
      dockerhash: f.dockerhash,
      recipe: 'mpi4py',
      runner: 'slurm',
      host: 'h',
      jobId: '12',
      started: '2026-01-01T00:00:00Z',
      finished: '2026-01-01T00:01:00Z',
      passed: false,
      checks: [
        {
          name: 'x|y',
          outcome: 'failed',
          passed: false,
          exitCode: 1,
          durationMs: 10,
          reason,
          tail: '',
          figures: { kind: 'latency', unit: 'us', points: [{ size: 1, value: 2 }] },
        },
      ],
    };
    const tokens = new MarkdownIt({ html: true }).parse(prBody(f, 1 << 20, [run]), {});
    const types = new Set(tokens.flatMap((t) => [t.type, ...(t.children ?? []).map((c) => c.type)]));
    for (const bad of ['html_inline', 'html_block', 'link_open', 'image']) expect(types).not.toContain(bad);
    // The one heading is the body's own.
    expect(tokens.filter((t) => t.type === 'heading_open')).toHaveLength(1);
    const cells = tokens
      .filter((t, i) => t.type === 'inline' && tokens[i - 1]?.type === 'td_open')
      .map((t) => (t.children ?? []).map((c) => c.content).join(''));
    expect(cells).toContain('x|y');
    expect(cells).toContain(`failed (${reason})`);
  });
});

describe('every emitter', () => {
  it('refuses a lone surrogate (no file can hold it) in one line, and each its own impossible characters', () => {
    const emitters = [bashWord, luaString, pyString, dockerfileString, htmlText, mdText];
    for (const emit of emitters)
      expect(() => emit('a\ud800b', 'the value')).toThrow(
        /^the value: "a\\ud800b" is not valid Unicode \(a lone surrogate\)/,
      );
    expect(() => bashWord('a\0b')).toThrow(/NUL/);
    expect(() => dockerfileString('a\nRUN id')).toThrow(/line break/);
    expect(() => htmlText('\0')).toThrow(/NUL/);
    expect(() => mdText('\u001b[2J')).toThrow(/control character/);
    expect(() => mdRaw('a`b')).toThrow(/backtick/);
  });
});
