/**
 * util/tar-end.ts tells a whole tar from one cut short, whatever the
 * chunks it comes in: every seeded tar fed whole says whole, every proper
 * prefix of it says where it was cut (what an engine that dies halfway
 * through an HTTP/1.0 answer sends), and a header that is not a tar's
 * throws.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import type * as tar from 'tar-stream';
import { TarEnd } from '../../src/util/tar-end';
import { tarNumber } from '../../src/util/tar-header';
import { tarBuffer } from '../support/archives';
import { seedOfRun } from '../support/hostile-strings';

const seed = seedOfRun('tar-end');

/** A tar of seeded members: files of any size (0, under and over a block), directories, links, long names. */
const tarOf = (members: Array<{ kind: number; size: number; long: boolean }>) =>
  tarBuffer(
    members.map(({ kind, size, long }, i) => {
      const name = `${long ? 'd'.repeat(120) + '/' : ''}m${i}`;
      const kinds: Array<Partial<tar.Header>> = [
        { type: 'file', size },
        { type: 'directory' },
        { type: 'symlink', linkname: 'm0' },
        { type: 'link', linkname: 'm0' },
      ];
      const header = { name, ...kinds[kind] } as tar.Header;
      return { header, body: kind === 0 ? Buffer.alloc(size, i + 1) : undefined };
    }),
  );

/** Feeds `bytes` in the chunks `cuts` (sorted offsets) make. */
function fed(bytes: Buffer, cuts: number[]): TarEnd {
  const t = new TarEnd();
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    t.feed(bytes.subarray(at, c));
    at = c;
  }
  return t;
}

const member = fc.record({
  kind: fc.integer({ min: 0, max: 3 }),
  size: fc.oneof(fc.constantFrom(0, 1, 511, 512, 513, 1024), fc.integer({ min: 0, max: 5000 })),
  long: fc.boolean(),
});

describe('TarEnd: a whole tar against one cut short', () => {
  it('a whole tar is whole in any chunking; each prefix is cut, and says where', async () => {
    const cases = fc.sample(
      fc.record({
        members: fc.array(member, { minLength: 0, maxLength: 6 }),
        cuts: fc.array(fc.nat(), { maxLength: 8 }),
        prefix: fc.nat(),
      }),
      { numRuns: 300, seed },
    );
    let cutSeen = 0;
    for (const { members, cuts, prefix } of cases) {
      const bytes = await tarOf(members);
      const chunks = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
      expect(fed(bytes, chunks).cut).toBeUndefined();
      // A proper prefix that still lacks the end-of-archive block (the first zero block after the last member).
      const end = bytes.length - 1024;
      const short = bytes.subarray(0, prefix % (end + 1));
      const t = fed(
        short,
        chunks.filter((c) => c < short.length),
      );
      expect(t.cut).toMatch(
        /^it ends at byte \d+, (inside the header at|inside the member whose header is at|before the end-of-archive block)/,
      );
      cutSeen++;
    }
    expect(cutSeen).toBe(300);
  });

  it('a stream cut right after a member, before the end block, is cut; one cut inside a member names its header', async () => {
    const bytes = await tarOf([
      { kind: 0, size: 700, long: false },
      { kind: 0, size: 10, long: false },
    ]);
    // Member 1: header at 0, data to 1536; member 2: header at 1536, data to 2560.
    expect(fed(bytes.subarray(0, 2560), []).cut).toBe('it ends at byte 2560, before the end-of-archive block');
    expect(fed(bytes.subarray(0, 1000), [3]).cut).toBe(
      'it ends at byte 1000, inside the member whose header is at byte 0',
    );
    expect(fed(bytes.subarray(0, 1600), [1540]).cut).toBe('it ends at byte 1600, inside the header at byte 1536');
    expect(fed(bytes.subarray(0, 0), []).cut).toBe('it ends at byte 0, before the end-of-archive block');
  });

  it('a header whose checksum is wrong is not a tar', async () => {
    const bytes = Buffer.from(await tarOf([{ kind: 0, size: 5, long: false }]));
    bytes[10] ^= 1;
    expect(() => fed(bytes, [100])).toThrow('not a tar: a bad header checksum at byte 0');
  });

  it("follows an old GNU sparse member's extension blocks (GNU tar's own), whole and cut", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-tar-end-'));
    try {
      // Twelve data runs: more than a header's map holds (4), so extension blocks follow it.
      const fh = await fs.open(path.join(dir, 'holes'), 'w');
      // Each run a whole 4 KiB of data: no block of it reads as the end-of-archive block.
      for (let i = 0; i < 12; i++) await fh.write(Buffer.alloc(4096, 0x78), 0, 4096, i * 65536);
      await fh.truncate(12 * 65536);
      await fh.close();
      execFileSync('tar', ['--format=gnu', '--sparse', '-cf', 'sparse.tar', 'holes'], { cwd: dir });
      const bytes = await fs.readFile(path.join(dir, 'sparse.tar'));
      expect(String.fromCharCode(bytes[156])).toBe('S');
      expect(bytes[482]).toBe(1);
      expect(fed(bytes, [700, 1100]).cut).toBeUndefined();
      // Cut inside the extension blocks, then inside the data: both inside the member at 0.
      expect(fed(bytes.subarray(0, 1024), []).cut).toBe(
        'it ends at byte 1024, inside the member whose header is at byte 0',
      );
      expect(fed(bytes.subarray(0, 2100), []).cut).toMatch(/inside the member whose header is at byte 0$/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("reads GNU base-256 sizes (8 GiB and more), as an engine's big layer has", () => {
    const h = Buffer.alloc(512);
    h[124] = 0x80;
    h.writeUIntBE(9 * 2 ** 30, 130, 6);
    expect(tarNumber(h, 124, 12)).toBe(9 * 2 ** 30);
    h.write('00000001750\0', 124, 'latin1');
    expect(tarNumber(h, 124, 12)).toBe(0o1750);
  });
});
