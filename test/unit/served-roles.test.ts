import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { scanImageArchive, scanImageConfig, servedDigests } from '../../src/fileserver/leakscan';
import { listServedFiles } from '../../src/fileserver/served';
import { checkFetches, definitionEnv, splitCommands } from '../../src/recipe/fetches';
import { parseDockerfile } from '../../src/recipe/parsed-dockerfile';
import { layerTar, legacyArchive, toOciLayout, type LayerEntry } from '../support/archives';
import { parseRecipe } from '../../src/recipe/schema';
import { resolveServed, rolesKey, servedRole, type ServedFile } from '../../src/recipe/served';
import { classifyServed, describeToolProblem, judgeTools, type PathEvent } from '../../src/fileserver/roles';
import { InputError, RefusedError } from '../../src/errors';

/** Issue 25 items 1-2: served files by role, the render-time fetch check, the tool judgement. */

const SERVED: ServedFile[] = [
  { file: 'cpe-24.03.tar', role: 'licensed' },
  { file: 'amdgpu-arch.cpp', role: 'licensed' },
  { file: 'rocminfo', role: 'tool', path: '/opt/rocm-6.2.0/bin/rocminfo' },
];
const HEAD = [
  'FROM x',
  'ENV CPE_VERSION="24.03"',
  'ENV REMOVE_CRAY_DEPS="rm -rf /opt/cray /opt/cray-deps"',
  'ENV ROCM_PATH="/opt/rocm-6.2.0"',
  'ARG SERVER_PORT',
];
const df = (...runs: string[]) => [...HEAD, ...runs, ''].join('\n');
const ALL_FETCHED = [
  'RUN cd $ROCM_PATH/bin ; curl -fsSL -o rocminfo "http://127.0.0.1:${SERVER_PORT}/rocminfo"',
  'RUN curl -o /tmp/a.cpp http://localhost:${SERVER_PORT}/amdgpu-arch.cpp && g++ /tmp/a.cpp && rm -f /tmp/a.cpp',
];
const check = (...runs: string[]) => checkFetches(parseDockerfile(df(...runs, ...ALL_FETCHED)), SERVED, 'v');
const refusal = (...runs: string[]) => {
  try {
    check(...runs);
  } catch (e) {
    expect(e).toBeInstanceOf(RefusedError);
    expect((e as RefusedError).exitCode).toBe(3);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('no refusal');
};

describe('the render-time fetch check', () => {
  it('accepts a licensed tarball fetched, unpacked, deleted and followed by $REMOVE_CRAY_DEPS in one RUN', () => {
    const r = check(
      'RUN set -eux ; \\\n  cd / ; \\\n  curl -fsSL -o /cpe.tar "http://127.0.0.1:${SERVER_PORT}/cpe-${CPE_VERSION}.tar" ; \\\n  tar -xf /cpe.tar ; rm -f /cpe.tar ; \\\n  make ; \\\n  $REMOVE_CRAY_DEPS',
    );
    expect(r.fetches.map((f) => `${f.step} ${f.file} ${f.role}`)).toEqual([
      '6 cpe-24.03.tar licensed',
      '7 rocminfo tool',
      '8 amdgpu-arch.cpp licensed',
    ]);
    expect(r.unfetched).toEqual([]);
  });

  it('accepts a download piped straight into tar, then $REMOVE_CRAY_DEPS', () => {
    expect(
      check('RUN curl -fsSL http://127.0.0.1:${SERVER_PORT}/cpe-24.03.tar | tar -C / -x ; make ; $REMOVE_CRAY_DEPS')
        .fetches,
    ).toHaveLength(3);
  });

  it('follows cd for relative destinations and rm -r of a directory above', () => {
    expect(
      check(
        'RUN mkdir /w && cd /w && wget -q http://127.0.0.1:${SERVER_PORT}/cpe-24.03.tar && tar xf cpe-24.03.tar && cd / && rm -rf /w && $REMOVE_CRAY_DEPS',
      ).fetches,
    ).toHaveLength(3);
  });

  it('refuses a licensed fetch not removed in its own RUN, naming the step and the file', () => {
    expect(refusal('RUN curl -o /cpe.tar http://127.0.0.1:${SERVER_PORT}/cpe-24.03.tar', 'RUN rm /cpe.tar')).toBe(
      'v: step 6 (RUN at line 6) fetches licensed cpe-24.03.tar to /cpe.tar and does not remove it in the same RUN (rm /cpe.tar after it)',
    );
    // Deleting it before the fetch is no removal.
    expect(refusal('RUN rm -f /cpe.tar ; curl -o /cpe.tar http://127.0.0.1:${SERVER_PORT}/cpe-24.03.tar')).toContain(
      'does not remove it in the same RUN',
    );
  });

  it('refuses an unpacked licensed tarball without $REMOVE_CRAY_DEPS after the unpacking', () => {
    expect(
      refusal('RUN curl -o /cpe.tar http://127.0.0.1:${SERVER_PORT}/cpe-24.03.tar ; tar -xf /cpe.tar ; rm /cpe.tar'),
    ).toBe(
      'v: step 6 (RUN at line 6) unpacks licensed cpe-24.03.tar and does not run $REMOVE_CRAY_DEPS after it in the same RUN',
    );
    expect(
      refusal(
        'RUN $REMOVE_CRAY_DEPS ; curl -o /cpe.tar http://127.0.0.1:${SERVER_PORT}/cpe-24.03.tar ; tar -xf /cpe.tar ; rm /cpe.tar',
      ),
    ).toContain('unpacks licensed cpe-24.03.tar');
  });

  it('refuses a fetch of a file without a role, one it cannot name, and ADD from the server', () => {
    expect(refusal('RUN curl -o /x http://127.0.0.1:${SERVER_PORT}/secret.bin ; rm /x')).toBe(
      "v: step 6 (RUN at line 6) fetches secret.bin from the file server, which has no role in the recipe's served: list (licensed or tool)",
    );
    expect(refusal('RUN for t in a b ; do curl -o $t http://127.0.0.1:${SERVER_PORT}/$t ; done')).toContain(
      'cannot tell which served file',
    );
    expect(refusal('ADD http://127.0.0.1:${SERVER_PORT}/cpe-24.03.tar /cpe.tar')).toContain(
      'with ADD, which keeps the file in a layer',
    );
    expect(refusal('RUN $GET /x http://127.0.0.1:${SERVER_PORT}/cpe-24.03.tar ; rm /x')).toContain(
      'cannot tell where it is written',
    );
  });

  it('lets a tool stay, and reports a served file no step fetches', () => {
    const r = checkFetches(
      parseDockerfile(df('RUN curl -o /usr/bin/rocminfo http://127.0.0.1:${SERVER_PORT}/rocminfo')),
      SERVED,
      'v',
    );
    expect(r.unfetched).toEqual(['cpe-24.03.tar', 'amdgpu-arch.cpp']);
  });

  it('reads the exec form and keeps quoted separators inside their word', () => {
    expect(splitCommands(`echo "a; b | c" ; rm -f '/x y' && ls`).map((c) => c.raw)).toEqual([
      ['echo', 'a; b | c'],
      ['rm', '-f', '/x y'],
      ['ls'],
    ]);
    expect(refusal('RUN ["curl", "-o", "/cpe.tar", "http://127.0.0.1:21000/cpe-24.03.tar"]')).toContain(
      'does not remove it',
    );
  });
});

describe('served roles in the recipe', () => {
  const recipe = (served: string) =>
    parseRecipe(
      `name: r\nnaming: { version: v, parts: [[v, v]] }\nfragments: [a.docker]\nparameters: { v: { type: version, default: '6.2.0' } }\n${served}`,
      '/defs/r',
      'r/recipe.yaml',
    );

  it('resolves names, conditions and $VAR paths for a variant', () => {
    const r = recipe(
      "served:\n  - { file: 'cpe-{{ v }}.tar', role: licensed }\n  - { file: rocminfo, role: tool, path: $ROCM_PATH/bin/rocminfo }\n  - { file: old.cpp, role: licensed, when: v < 6 }\n",
    );
    const served = resolveServed(
      r,
      { v: '6.2.0' },
      definitionEnv(parseDockerfile('FROM x\nENV ROCM_PATH="/opt/rocm-6.2.0"\n')),
    );
    expect(served).toEqual([
      { file: 'cpe-6.2.0.tar', role: 'licensed' },
      { file: 'rocminfo', role: 'tool', path: '/opt/rocm-6.2.0/bin/rocminfo' },
    ]);
    expect(rolesKey(served)).toBe('cpe-6.2.0.tar licensed\nrocminfo tool /opt/rocm-6.2.0/bin/rocminfo');
    expect(() => resolveServed(r, { v: '6.2.0' }, new Map())).toThrow(
      'r: served[1].path: "$ROCM_PATH/bin/rocminfo" is not an absolute path',
    );
  });

  it('refuses a bad declaration in one line', () => {
    expect(() => recipe('served:\n  - { file: x, role: secret }\n')).toThrow(/^r\/recipe\.yaml: served\[0\]/);
    expect(() => recipe('served:\n  - { file: x, role: tool }\n')).toThrow(/served\[0\]\.path/);
    expect(() => recipe('served:\n  - { file: ../x, role: licensed }\n')).toThrow(
      /served\[0\]\.file: .*relative file name/,
    );
    expect(() => recipe('served:\n  - { file: x, role: licensed }\n  - { file: x, role: licensed }\n')).toThrow(
      'served[1].file: "x" is declared twice',
    );
    expect(() => recipe('served:\n  - { file: x, role: licensed, when: nope >= 1 }\n')).toThrow(
      'served[0].when: names unknown parameter "nope"',
    );
  });

  it('refuses a served name that is not plain (at the schema or once resolved): a space, a line break, non-ASCII', () => {
    for (const name of ['"my tool"', '"a\\nb tool /p"', 'ünï', '"x\\u202e"', '"{{ v }} x"']) {
      expect(() =>
        resolveServed(recipe(`served:\n  - { file: ${name}, role: licensed }\n`), { v: '6.2.0' }, new Map()),
      ).toThrow(/served\[0\]\.file: /);
    }
  });
});

describe('judging served files by role', () => {
  it('counts every served file the recipe does not declare as licensed', () => {
    expect(
      classifyServed(
        ['cpe.tar', 'rocminfo', 'extra.bin'],
        [{ file: 'rocminfo', role: 'tool', path: '/opt/rocm/bin/rocminfo' }],
      ),
    ).toEqual({
      licensed: ['cpe.tar', 'extra.bin'],
      tools: [{ file: 'rocminfo', path: '/opt/rocm/bin/rocminfo' }],
    });
  });

  it('judges each file as the provenance records it (one rule: recipe/served.ts servedRole)', () => {
    const served = [
      { file: 'rocminfo', role: 'tool' as const, path: '/opt/rocm/bin/rocminfo' },
      { file: 'src.tar.gz', role: 'source' as const },
      { file: 'cpe.tar', role: 'licensed' as const },
    ];
    const present = ['cpe.tar', 'rocminfo', 'src.tar.gz', 'undeclared.bin'];
    const { licensed, tools } = classifyServed(present, served);
    for (const file of present) {
      const role = servedRole(file, served).role;
      expect([
        file,
        licensed.includes(file) ? 'licensed' : tools.some((t) => t.file === file) ? 'tool' : 'source',
      ]).toEqual([file, role]);
    }
  });

  const tool = { file: 'rocminfo', path: '/opt/rocm/bin/rocminfo', digest: 'd1' };
  const order = ['l1', 'l2', 'l3'];
  const events = (...e: PathEvent[]) => new Map([[tool.path, e]]);

  it('expects a tool at its path with the served bytes in the finished image', () => {
    expect(
      judgeTools(
        [tool],
        [{ layer: 'l2', path: tool.path, digest: 'd1' }],
        events({ layer: 'l2', kind: 'file', digest: 'd1' }),
        order,
      ),
    ).toEqual([]);
    // Written, deleted, written again: the last layer decides, whatever order the archive listed them in.
    expect(
      judgeTools(
        [tool],
        [],
        events(
          { layer: 'l3', kind: 'file', digest: 'd1' },
          { layer: 'l2', kind: 'deleted' },
          { layer: 'l1', kind: 'file', digest: 'd1' },
        ),
        order,
      ),
    ).toEqual([]);
  });

  it('fails a tool missing, changed or found at another path, naming it', () => {
    const missing = judgeTools(
      [tool],
      [],
      events({ layer: 'l1', kind: 'file', digest: 'd1' }, { layer: 'l2', kind: 'deleted' }),
      order,
    );
    expect(missing.map(describeToolProblem)).toEqual([
      'served tool rocminfo is not in the image at /opt/rocm/bin/rocminfo, its declared path',
    ]);
    const changed = judgeTools(
      [tool],
      [],
      events({ layer: 'l1', kind: 'file', digest: 'd1' }, { layer: 'l3', kind: 'file', digest: 'd9' }),
      order,
    );
    expect(changed.map(describeToolProblem)).toEqual([
      'served tool rocminfo at /opt/rocm/bin/rocminfo is not the served file (its content changed)',
    ]);
    expect(judgeTools([tool], [], events({ layer: 'l1', kind: 'other' }), order)[0].why).toBe('changed');
    const elsewhere = judgeTools(
      [tool],
      [
        { layer: 'l2', path: tool.path, digest: 'd1' },
        { layer: 'l3', path: '/usr/bin/x', digest: 'd1' },
      ],
      events({ layer: 'l2', kind: 'file', digest: 'd1' }),
      order,
    );
    expect(elsewhere.map(describeToolProblem)).toEqual([
      'served tool rocminfo is also at /usr/bin/x in layer l3 (it may stay only at /opt/rocm/bin/rocminfo)',
    ]);
  });
});

describe('the leak scan over hand-made docker archives', () => {
  const TOOL = 'stand-in tool bytes\n';
  const digest = createHash('sha256').update(TOOL).digest('hex');
  const tools = [{ file: 'rocminfo', path: '/opt/rocm/bin/rocminfo', digest }];
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-roles-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const scan = async (name: string, layers: LayerEntry[][], oci = false) => {
    const legacy = path.join(dir, `${name}.tar`);
    await legacyArchive(legacy, await Promise.all(layers.map((l) => layerTar(l))));
    let file = legacy;
    if (oci) {
      file = path.join(dir, `${name}-oci.tar`);
      await toOciLayout(legacy, file);
    }
    return scanImageArchive(createReadStream(file), {
      digests: new Map([[createHash('sha256').update('licensed\n').digest('hex'), 'cpe.tar']]),
      tools,
    });
  };

  it('expects the tool where it is declared, in the legacy and the OCI layout', async () => {
    for (const oci of [false, true]) {
      const r = await scan(
        `ok${oci}`,
        [[{ name: 'opt/rocm/bin/rocminfo', content: TOOL }], [{ name: 'etc/x', content: 'x' }]],
        oci,
      );
      expect([r.leaks, r.toolProblems, r.tools]).toEqual([[], [], 1]);
    }
  });

  it('sees a whiteout or an opaque directory above the tool as its removal, and a later copy as its return', async () => {
    const gone = await scan('gone', [
      [{ name: 'opt/rocm/bin/rocminfo', content: TOOL }],
      [{ name: 'opt/rocm/.wh.bin', content: '' }],
    ]);
    expect(gone.toolProblems.map((p) => p.why)).toEqual(['missing']);
    const opaque = await scan('opaque', [
      [{ name: 'opt/rocm/bin/rocminfo', content: TOOL }],
      [{ name: 'opt/rocm/.wh..wh..opq', content: '' }],
    ]);
    expect(opaque.toolProblems.map((p) => p.why)).toEqual(['missing']);
    const back = await scan('back', [
      [{ name: 'opt/rocm/bin/rocminfo', content: TOOL }],
      [{ name: 'opt/rocm/bin/.wh.rocminfo', content: '' }],
      [{ name: 'opt/rocm/bin/rocminfo', content: TOOL }],
    ]);
    expect(back.toolProblems).toEqual([]);
  });

  it('finds a hard link to the tool at another path, and licensed bytes in a tool-free image', async () => {
    const linked = await scan('linked', [
      [
        { name: 'opt/rocm/bin/rocminfo', content: TOOL },
        { name: 'usr/bin/rocminfo', type: 'link', linkname: 'opt/rocm/bin/rocminfo' },
      ],
    ]);
    expect(linked.toolProblems.map(describeToolProblem)).toEqual([
      'served tool rocminfo is also at /usr/bin/rocminfo in layer l0/layer.tar (it may stay only at /opt/rocm/bin/rocminfo)',
    ]);
    const leak = await scan('leak', [
      [
        { name: 'opt/rocm/bin/rocminfo', content: TOOL },
        { name: 'srv/notes', content: 'licensed\n' },
      ],
      [{ name: 'srv/.wh.notes', content: '' }],
    ]);
    expect(leak.leaks).toEqual([{ layer: 'l0/layer.tar', path: '/srv/notes', why: 'served content' }]);
  });
});

describe('a served directory with hostile entries', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-h57-served-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const oneLine = async (p: Promise<unknown>, re: RegExp) => {
    const e: unknown = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).exitCode).toBe(2);
    expect((e as Error).message).toMatch(re);
    expect((e as Error).message).not.toContain('\n');
  };

  it('refuses a symlink (leading inside or out) or a FIFO in one line: the name fetched would not be the file judged', async () => {
    for (const [name, make] of [
      ['inside', (d: string) => fs.symlink(path.join(d, 'cpe.tar'), path.join(d, 'sub', 'cpe-latest.tar'))],
      ['outside', (d: string) => fs.symlink('/etc/passwd', path.join(d, 'sub', 'passwd'))],
      ['fifo', async (d: string) => void execFileSync('mkfifo', [path.join(d, 'sub', 'pipe')])],
    ] as const) {
      const d = path.join(dir, name);
      await fs.mkdir(path.join(d, 'sub'), { recursive: true });
      await fs.writeFile(path.join(d, 'cpe.tar'), 'licensed\n');
      await make(d);
      await oneLine(
        listServedFiles(d),
        name === 'fifo' ? /"sub\/pipe" .* is not a regular file/ : /is a symbolic link/,
      );
    }
  });

  it('lists odd names, hard links and empty files, each judged licensed; an empty file is no needle', async () => {
    const d = path.join(dir, 'odd');
    await fs.mkdir(d);
    await fs.writeFile(path.join(d, 'cpe.tar'), 'licensed\n');
    await fs.link(path.join(d, 'cpe.tar'), path.join(d, 'hard link'));
    for (const n of ['new\nline', 'ünï', 'tab\tx', 'empty'])
      await fs.writeFile(path.join(d, n), n === 'empty' ? '' : n);
    const present = await listServedFiles(d);
    expect(present).toEqual(['cpe.tar', 'empty', 'hard link', 'new\nline', 'tab\tx', 'ünï']);
    const roles = classifyServed(present, []);
    expect(roles.licensed).toEqual(present);
    const needles = await servedDigests(d, roles.licensed);
    const empty = createHash('sha256').digest('hex');
    expect(needles.digests.has(empty)).toBe(false);
    expect(needles.digests.get(createHash('sha256').update('licensed\n').digest('hex'))).toMatch(
      /^(cpe\.tar|hard link)$/,
    );
    // Each content's size, no empty one: 'licensed\n', 'new\nline', 'ünï' (5 bytes in UTF-8), 'tab\tx'.
    expect([...needles.sizes].sort((a, b) => a - b)).toEqual([5, 8, 9]);
    const config = JSON.stringify({ config: { Labels: { note: `sha256:${empty}` } }, history: [] });
    expect(scanImageConfig(config, needles)).toEqual([]);
  });

  it('refuses a declared tool the directory does not hold, also when only a case-folded name is there', () => {
    const tool: ServedFile = { file: 'rocminfo', role: 'tool', path: '/opt/rocm/bin/rocminfo' };
    expect(() => classifyServed(['cpe.tar'], [tool])).toThrow(
      /^served tool "rocminfo" declared by the recipe is not in the served directory$/,
    );
    expect(() => classifyServed(['RocmInfo'], [tool])).toThrow(InputError);
    // A licensed file declared and absent has nothing to leak: fine.
    expect(classifyServed([], [{ file: 'cpe.tar', role: 'licensed' }])).toEqual({ licensed: [], tools: [] });
  });
});
