/**
 * The raw tar path of the engine converter: util/tar-walk.ts reads members
 * as tar-stream does (pax and GNU long names, a pax size), convert/
 * squash-tar.ts's headerBlocks writes any entry's header so that both
 * readers get back what went in, and convert/tar-pass.ts edits a stream
 * member by member in any chunking, its data going on uncopied.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import type * as tar from 'tar-stream';
import { indexArchive } from '../../src/convert/archive';
import { tarHeader } from '../../src/convert/squash';
import { dataPadding, headerBlocks } from '../../src/convert/squash-tar';
import { tarPass, type MemberEdit } from '../../src/convert/tar-pass';
import type { Entry, EntryType } from '../../src/convert/flatten';
import { TarEnd } from '../../src/util/tar-end';
import { TarWalk, type WalkedMember } from '../../src/util/tar-walk';
import { tarBuffer, tarHeaders } from '../support/archives';
import { seedOfRun } from '../support/hostile-strings';

const seed = seedOfRun('tar-pass');
const MTIME = new Date('2026-01-01T00:00:00Z');
const END = Buffer.alloc(1024);

function entry(type: EntryType, over: Partial<Entry> = {}): Entry {
  return { type, mode: type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: MTIME, size: 0, ...over };
}

/** A member written by headerBlocks, its data and padding. */
function member(h: tar.Header, body = Buffer.alloc(0)): Buffer {
  return Buffer.concat([headerBlocks(h), body, dataPadding(body.length)]);
}

/** Every member `bytes` holds, as the walk reads it, fed in the chunks `cuts` make. */
function walked(bytes: Buffer, cuts: number[] = []): Array<WalkedMember & { data: Buffer }> {
  const out: Array<WalkedMember & { data: Buffer }> = [];
  const walk = new TarWalk({
    member: (m) => out.push({ ...m, data: Buffer.alloc(0) }),
    data: (piece) => {
      const m = out[out.length - 1];
      m.data = Buffer.concat([m.data, piece]);
    },
  });
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    walk.feed(bytes.subarray(at, c));
    at = c;
  }
  expect(walk.ended).toBe(true);
  return out.map((m) => ({ ...m, data: m.data.subarray(0, m.size) }));
}

/** Sets a header block's numeric field to zeros (a writer that put the value in pax only) and mends its checksum (start 148: only that). */
function zeroField(block: Buffer, start: number, len: number): void {
  if (start !== 148) block.write('0'.repeat(len - 1) + '\0', start, 'latin1');
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const b of block.subarray(0, 512)) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}

const NAMES = fc.oneof(
  fc.stringMatching(/^[a-z]{1,8}(\/[a-z]{1,8}){0,3}$/),
  fc.constantFrom(`${'d'.repeat(99)}/f`, 'é/ü', `${'x'.repeat(150)}`, `a/${'b'.repeat(200)}/c`),
);

describe('headerBlocks: any entry, read back as written', () => {
  it('by the walk and by tar-stream, for every type, long and non-ASCII names, big owners and xattrs', async () => {
    const cases = fc.sample(
      fc.record({
        type: fc.constantFrom<EntryType | 'link'>(
          'file',
          'directory',
          'symlink',
          'link',
          'character-device',
          'block-device',
          'fifo',
        ),
        name: NAMES,
        target: NAMES,
        size: fc.integer({ min: 0, max: 3000 }),
        uid: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 31 })),
        mode: fc.integer({ min: 0, max: 0o7777 }),
        xattr: fc.boolean(),
      }),
      { numRuns: 200, seed },
    );
    const headers = cases.map((c) => {
      const kind = c.type === 'link' ? 'file' : c.type;
      const e = entry(kind, {
        mode: c.mode,
        uid: c.uid,
        gid: 7,
        size: kind === 'file' ? c.size : 0,
        linkname: c.type === 'symlink' ? c.target : undefined,
        devmajor: c.type.endsWith('device') ? 8 : undefined,
        devminor: c.type.endsWith('device') ? 1 : undefined,
        xattrs: c.xattr ? { 'SCHILY.xattr.user.k': 'v' } : undefined,
      });
      const h = tarHeader(c.name, e);
      return c.type === 'link' ? { ...h, type: 'link' as const, linkname: c.target, size: 0 } : h;
    });
    const bytes = Buffer.concat([...headers.map((h, i) => member(h, Buffer.alloc(h.size ?? 0, i % 250))), END]);
    const byWalk = walked(bytes, [777, 5000]);
    const byTarStream = await tarHeaders(bytes);
    expect(byWalk).toHaveLength(headers.length);
    headers.forEach((h, i) => {
      const want = {
        name: h.name,
        type: h.type,
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid,
        gid: h.gid,
        size: h.size ?? 0,
        linkname: h.linkname ?? null,
      };
      for (const got of [byWalk[i].header, byTarStream[i]]) {
        expect({
          name: got.name.replace(/\/$/, ''),
          type: got.type,
          mode: got.mode,
          uid: got.uid,
          gid: got.gid,
          size: got.size,
          linkname: got.linkname || null,
        }).toEqual(want);
        expect(got.mtime).toEqual(MTIME);
        expect((got.pax as Record<string, string> | null | undefined)?.['SCHILY.xattr.user.k']).toBe(
          (h.pax as Record<string, string> | undefined)?.['SCHILY.xattr.user.k'],
        );
      }
      if (h.type?.endsWith('device')) expect([byWalk[i].header.devmajor, byWalk[i].header.devminor]).toEqual([8, 1]);
      expect(byWalk[i].data).toEqual(Buffer.alloc(h.size ?? 0, i % 250));
    });
  });

  it('puts a size of 8 GiB or more in pax (size=), the field left zero, and both readers take it', async () => {
    const size = 9 * 2 ** 30;
    const blocks = headerBlocks(tarHeader('big', entry('file', { size })));
    expect(blocks.toString('latin1')).toContain(` size=${size}\n`);
    const walk = new TarWalk({ member: (m) => expect(m.size).toBe(size) });
    walk.feed(blocks);
    expect(walk.left).toBe(size);
  });
});

describe('TarWalk and TarEnd follow a pax size= over the header field', () => {
  it("reads Go's way of writing a big size (pax record, zero field) as the member's data", () => {
    const blocks = headerBlocks(tarHeader('f', { ...entry('file', { size: 1000 }), xattrs: { size: '1000' } }));
    // The pax header's records, then the member's own header: zero its size field, as Go's writer does.
    const own = blocks.subarray(blocks.length - 512);
    zeroField(own, 124, 12);
    const bytes = Buffer.concat([
      blocks,
      Buffer.alloc(1000, 0x41),
      dataPadding(1000),
      member(tarHeader('g', entry('file'))),
      END,
    ]);
    const got = walked(bytes, [600]);
    expect(got.map((m) => [m.header.name, m.size])).toEqual([
      ['f', 1000],
      ['g', 0],
    ]);
    expect(got[0].data).toEqual(Buffer.alloc(1000, 0x41));
    const end = new TarEnd();
    end.feed(bytes);
    expect(end.cut).toBeUndefined();
  });

  it('applies a GNU long name and long link, as tar-stream does', async () => {
    const name = `${'n'.repeat(120)}/x`;
    const target = `${'t'.repeat(130)}`;
    const bytes = await tarBuffer([{ header: { name, type: 'link', linkname: target } as tar.Header }]);
    const [m] = walked(bytes);
    expect([m.header.name, m.header.linkname, m.header.type]).toEqual([name, target, 'link']);
  });

  it('the docker archive index takes the pax size too, and finds the member after it', async () => {
    const blocks = headerBlocks(tarHeader('big', { ...entry('file', { size: 1000 }), xattrs: { size: '1000' } }));
    zeroField(blocks.subarray(blocks.length - 512), 124, 12);
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-tar-pass-')), 'a.tar');
    try {
      await fs.writeFile(
        file,
        Buffer.concat([
          blocks,
          Buffer.alloc(1000, 0x41),
          dataPadding(1000),
          member(tarHeader('next', entry('file', { size: 3 })), Buffer.from('abc')),
          END,
        ]),
      );
      const index = await indexArchive(file);
      expect(index.get('big')).toEqual({ offset: blocks.length, size: 1000 });
      expect(index.get('next')).toEqual({ offset: blocks.length + 1024 + 512, size: 3 });
    } finally {
      await fs.rm(path.dirname(file), { recursive: true, force: true });
    }
  });

  it("applies a global pax header's records to every later member, a member's own over it", () => {
    // A pax header turned global ('g'): its records hold for all that follow.
    const global = Buffer.from(
      headerBlocks(tarHeader('a', { ...entry('file'), xattrs: { comment: 'all', uid: '5' } })).subarray(0, 1024),
    );
    global.write('g', 156, 'latin1');
    zeroField(global, 148, 8);
    const bytes = Buffer.concat([
      global,
      member(tarHeader('one', entry('file'))),
      member(tarHeader('two', { ...entry('file'), xattrs: { comment: 'mine' } })),
      END,
    ]);
    const got = walked(bytes);
    expect(got.map((m) => [m.header.name, m.header.pax?.comment, m.header.pax?.uid])).toEqual([
      ['one', 'all', '5'],
      ['two', 'mine', '5'],
    ]);
  });
});

describe('tarPass: a stream edited member by member', () => {
  /** A seeded tar: files, directories and symlinks, some to be dropped (names starting "drop"). */
  async function sampleTar(n: number, i: number): Promise<{ bytes: Buffer; kept: string[] }> {
    const items = Array.from({ length: n }, (_, k) => {
      const drop = (k + i) % 3 === 0;
      const name = `${drop ? 'drop' : 'keep'}${k}`;
      const kind = k % 4 === 3 ? 'directory' : k % 4 === 2 ? 'symlink' : 'file';
      const size = kind === 'file' ? (k * 997 + i * 131) % 4000 : 0;
      return {
        name,
        header: { name, type: kind, size, linkname: kind === 'symlink' ? 'keep0' : undefined } as tar.Header,
        body: Buffer.alloc(size, k + 1),
      };
    });
    const bytes = await tarBuffer(items.map(({ header, body }) => ({ header, body })));
    return { bytes, kept: items.filter((x) => x.name.startsWith('keep')).map((x) => x.name) };
  }

  async function passed(
    bytes: Buffer,
    cuts: number[],
    edit: (m: WalkedMember) => MemberEdit,
    trailer?: Buffer,
  ): Promise<{ out: Buffer; inputs: ArrayBuffer[]; outputs: Buffer[] }> {
    const pass = tarPass(edit, () => Buffer.concat([trailer ?? Buffer.alloc(0), END]), 'the test tar');
    const outputs: Buffer[] = [];
    pass.on('data', (c: Buffer) => outputs.push(c));
    const done = new Promise((resolve, reject) => {
      pass.on('end', resolve);
      pass.on('error', reject);
    });
    const inputs: ArrayBuffer[] = [];
    let at = 0;
    for (const c of [...cuts, bytes.length]) {
      const chunk = Buffer.from(bytes.subarray(at, c));
      inputs.push(chunk.buffer as ArrayBuffer);
      pass.write(chunk);
      at = c;
    }
    pass.end();
    await done;
    return { out: Buffer.concat(outputs), inputs, outputs };
  }

  it('leaves out the members it drops (data and all), rewrites the rest, adds the trailer, in any chunking', async () => {
    const runs = fc.sample(
      fc.record({ n: fc.integer({ min: 0, max: 12 }), cuts: fc.array(fc.nat(), { maxLength: 6 }) }),
      { numRuns: 60, seed },
    );
    for (const [i, { n, cuts }] of runs.entries()) {
      const { bytes, kept } = await sampleTar(n, i);
      const chunks = [...new Set(cuts.map((c) => c % Math.max(1, bytes.length)))].sort((a, b) => a - b);
      const peeks: Array<[string, string]> = [];
      const { out } = await passed(
        bytes,
        chunks,
        ({ header: h }) =>
          h.name.startsWith('drop')
            ? { blocks: null }
            : {
                blocks: headerBlocks({ ...h, mode: 0o600, pax: undefined } as tar.Header),
                peek: { bytes: 3, seen: (head) => peeks.push([h.name, head.toString('hex')]) },
              },
        member(tarHeader('added', entry('file', { size: 2 })), Buffer.from('hi')),
      );
      const got = walked(out);
      expect(got.map((m) => m.header.name.replace(/\/$/, ''))).toEqual([...kept, 'added']);
      const before = walked(bytes);
      for (const m of got.slice(0, -1)) {
        const orig = before.find((b) => b.header.name === m.header.name);
        if (!orig)
          throw new Error(
            `${m.header.name} (${m.header.type}) is not in ${before.map((b) => b.header.name).join(' ')}`,
          );
        expect(m.data).toEqual(orig.data);
        expect(m.header.mode).toBe(0o600);
      }
      expect(got[got.length - 1].data.toString()).toBe('hi');
      // Each kept file with data had its first bytes (up to 3) seen, once.
      const withData = got.filter((m) => m.size > 0 && m.header.name !== 'added');
      expect(peeks.map(([name]) => name)).toEqual(withData.map((m) => m.header.name));
      for (const [name, hex] of peeks)
        expect(hex).toBe(
          withData
            .find((m) => m.header.name === name)
            ?.data.subarray(0, 3)
            .toString('hex'),
        );
    }
  });

  it('sends the data on as slices of the chunks it came in, never copies', async () => {
    const { bytes } = await sampleTar(6, 1);
    const { inputs, outputs } = await passed(bytes, [4096, 9000], ({ header: h }) => ({
      blocks: headerBlocks({ ...h, pax: undefined } as tar.Header),
    }));
    const data = outputs.filter((o) => inputs.includes(o.buffer as ArrayBuffer));
    const walkedData = walked(bytes).reduce((s, m) => s + Math.ceil(m.size / 512) * 512, 0);
    expect(data.reduce((s, o) => s + o.length, 0)).toBe(walkedData);
  });

  it('fails a stream cut short, and a header that is not a tar', async () => {
    const { bytes } = await sampleTar(4, 1);
    const keep = ({ header: h }: WalkedMember) => ({ blocks: headerBlocks({ ...h, pax: undefined } as tar.Header) });
    await expect(passed(bytes.subarray(0, 700), [], keep)).rejects.toThrow(
      /^the test tar stopped short: it ends at byte 700, inside the member/,
    );
    const bad = Buffer.from(bytes);
    bad[3] ^= 1;
    await expect(passed(bad, [], keep)).rejects.toThrow('not a tar: a bad header checksum at byte 0');
  });

  it('stops at the end-of-archive block: what follows is not read', async () => {
    const { bytes } = await sampleTar(2, 1);
    const more = Buffer.concat([bytes, member(tarHeader('after', entry('file')))]);
    const { out } = await passed(more, [], ({ header: h }) => ({
      blocks: headerBlocks({ ...h, pax: undefined } as tar.Header),
    }));
    expect(walked(out).map((m) => m.header.name)).not.toContain('after');
  });
});
