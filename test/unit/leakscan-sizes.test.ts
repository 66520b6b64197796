/**
 * The leak scan hashes only the files whose size a served content or a
 * tool has: the verdict must be the one hashing every file gives, for any
 * image. Seeded images of served contents, look-alikes of their sizes,
 * tools at their paths and elsewhere, hard links and whiteouts.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import type * as tar from 'tar-stream';
import { scanImageArchive, sizesToHash, type ScanNeedles } from '../../src/fileserver/leakscan';
import { tarBuffer } from '../support/archives';
import { seedOfRun } from '../support/hostile-strings';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Two licensed contents, a tool's, and look-alikes of each size (one byte changed). */
const LICENSED = [
  Buffer.from('licensed library bytes\n'),
  Buffer.from('another licensed file, longer than the first\n'),
];
const TOOL = Buffer.from('#!/bin/sh\necho a served tool\n');
const LOOK_ALIKES = [...LICENSED, TOOL].map((b) => Buffer.concat([b.subarray(0, -1), Buffer.from('?')]));
const OTHERS = [Buffer.from(''), Buffer.from('x'), Buffer.alloc(3000, 7), Buffer.from('plain file\n')];
const CONTENTS = [...LICENSED, TOOL, ...LOOK_ALIKES, ...OTHERS];
const TOOL_PATH = 'opt/rocm/bin/tool';
const PATHS = [TOOL_PATH, 'usr/lib/a.so', 'usr/lib/b.so', 'home/c', 'opt/rocm/bin/other'];

const needlesWithSizes: ScanNeedles = {
  digests: new Map(LICENSED.map((b, i) => [sha(b), `licensed-${i}`])),
  sizes: new Set(LICENSED.map((b) => b.length)),
  tools: [{ file: 'tool', path: `/${TOOL_PATH}`, digest: sha(TOOL), size: TOOL.length }],
};
/** The same needles, every file hashed. */
const needlesHashAll: ScanNeedles = {
  digests: needlesWithSizes.digests,
  tools: [{ file: 'tool', path: `/${TOOL_PATH}`, digest: sha(TOOL) }],
};

type Member = { kind: 'file'; path: number; content: number } | { kind: 'link' | 'whiteout'; path: number; to: number };

const member: fc.Arbitrary<Member> = fc.oneof(
  fc.record({
    kind: fc.constant('file' as const),
    path: fc.nat(PATHS.length - 1),
    content: fc.nat(CONTENTS.length - 1),
  }),
  fc.record({
    kind: fc.constantFrom('link' as const, 'whiteout' as const),
    path: fc.nat(9),
    to: fc.nat(PATHS.length - 1),
  }),
);

/** A layer's tar: files, hard links to this layer's files, whiteouts. */
async function layerOf(members: Member[]): Promise<Buffer> {
  const entries: Array<{ header: tar.Header; body?: Buffer }> = [];
  const written = new Set<string>();
  for (const m of members) {
    if (m.kind === 'file') {
      const body = CONTENTS[m.content];
      entries.push({ header: { name: PATHS[m.path], size: body.length } as tar.Header, body });
      written.add(PATHS[m.path]);
    } else if (m.kind === 'link' && written.has(PATHS[m.to])) {
      entries.push({ header: { name: `srv/link${m.path}`, type: 'link', linkname: PATHS[m.to] } as tar.Header });
    } else if (m.kind === 'whiteout') {
      const p = PATHS[m.to];
      entries.push({
        header: {
          name: `${p.slice(0, p.lastIndexOf('/'))}/.wh.${p.slice(p.lastIndexOf('/') + 1)}`,
          size: 0,
        } as tar.Header,
      });
    }
  }
  return tarBuffer(entries);
}

async function saved(layers: Buffer[]): Promise<Readable> {
  const names = layers.map((_, i) => `l${i}/layer.tar`);
  const manifest = [{ Config: 'c.json', RepoTags: [], Layers: names }];
  return Readable.from([
    await tarBuffer([
      ...layers.map((body, i) => ({ header: { name: names[i], size: body.length } as tar.Header, body })),
      { header: { name: 'c.json' } as tar.Header, body: Buffer.from('{"rootfs":{}}') },
      { header: { name: 'manifest.json' } as tar.Header, body: Buffer.from(JSON.stringify(manifest)) },
    ]),
  ]);
}

it('hashes only the sizes of served contents and tools, when every size is known', () => {
  expect([...(sizesToHash(needlesWithSizes) ?? [])].sort((a, b) => a - b)).toEqual(
    [...LICENSED, TOOL].map((b) => b.length).sort((a, b) => a - b),
  );
  expect(sizesToHash(needlesHashAll)).toBeUndefined();
  expect(sizesToHash({ digests: new Map(), sizes: new Set([1]), tools: [] })).toEqual(new Set([1]));
});

it('gives the verdict that hashing every file gives, for any image (seeded)', async () => {
  const seed = seedOfRun('leakscan-sizes');
  let leaks = 0;
  let problems = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(member, { maxLength: 8 }), { minLength: 1, maxLength: 3 }), async (layers) => {
      const tars = await Promise.all(layers.map(layerOf));
      const fast = await scanImageArchive(await saved(tars), needlesWithSizes);
      const all = await scanImageArchive(await saved(tars), needlesHashAll);
      leaks += fast.leaks.length;
      problems += fast.toolProblems.length;
      expect(fast).toEqual(all);
    }),
    { seed, numRuns: 300 },
  );
  // The images had leaks and tool problems to find, not only clean ones.
  expect(leaks).toBeGreaterThan(0);
  expect(problems).toBeGreaterThan(0);
});
