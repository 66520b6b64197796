/**
 * The tar sifkit feeds `mksquashfs -tar`: symlink headers are its own
 * (squash-tar.ts), never a pax `linkpath=` (whose leading "/", "./" or
 * "../" mksquashfs 4.5.1 strips); every other header is tar-stream's,
 * byte for byte. Read back here by tar-stream's extractor; the real
 * mksquashfs reads them in test/integration/convert-symlinks.test.ts.
 */
import * as tar from 'tar-stream';
import { tarHeader } from '../../src/convert/squash';
import { paxRecord, quietPack, symlinkHeaderBlocks } from '../../src/convert/squash-tar';
import type { Entry } from '../../src/convert/flatten';
import { LINK_CASES, tarBuffer, tarHeaders } from '../support/archives';

const MTIME = new Date('2026-01-01T00:00:00Z');

function entry(over: Partial<Entry>): Entry {
  return { type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: MTIME, size: 0, ...over };
}

/** These headers (and bodies) packed by `pack` into one tar's bytes. */
function packed(pack: tar.Pack, items: Array<{ h: tar.Header; body?: Buffer }>): Promise<Buffer> {
  return tarBuffer(
    items.map(({ h, body }) => ({ header: h, body })),
    pack,
  );
}

/** The bytes of every pax `linkpath=` record in a tar (none should be there). */
function linkpathRecords(bytes: Buffer): number {
  return bytes.toString('latin1').split(' linkpath=').length - 1;
}

describe('symlink headers for mksquashfs', () => {
  it('keeps every name and target through the pack, with no pax linkpath record', async () => {
    const items = LINK_CASES.map((l) => ({
      h: tarHeader(l.name, entry({ type: 'symlink', mode: 0o777, linkname: l.target })),
    }));
    const bytes = await packed(quietPack(), items);
    expect(linkpathRecords(bytes)).toBe(0);
    const got = (await tarHeaders(bytes)).map((h) => [h.type, h.name, h.linkname]);
    expect(got).toEqual(items.map(({ h }) => ['symlink', h.name, h.linkname]));
  });

  it('puts a target of up to 100 bytes in the linkname field, a longer one in a GNU long-link record first', () => {
    const link = (name: string, linkname: string) =>
      symlinkHeaderBlocks({ name, linkname, mode: 0o777, uid: 0, gid: 0, mtime: MTIME });
    const short = link('ü', `/${'p'.repeat(99)}`);
    // A pax header (for the non-ASCII name) and the symlink: two blocks each side of the records.
    expect(short.length).toBe(3 * 512);
    expect(short.toString('latin1', 156, 157)).toBe('x');
    expect(short.toString('utf8', 512, 523)).toBe('11 path=ü\n');
    expect(short.toString('latin1', 1024 + 156, 1024 + 157 + 100)).toBe(`2/${'p'.repeat(99)}`);

    const long = link('a', `/${'q'.repeat(100)}`);
    expect(long.toString('latin1', 156, 157)).toBe('K');
    expect(long.toString('latin1', 0, 13)).toBe('././@LongLink');
    // The target and its NUL, then the symlink's own header under its name.
    expect(long.toString('latin1', 512, 512 + 102)).toBe(`/${'q'.repeat(100)}\0`);
    expect(long.length).toBe(3 * 512);
    expect(long.toString('latin1', 1024, 1025)).toBe('a');
  });

  it('carries xattrs and big owners of a symlink in its own pax header, the target still outside it', async () => {
    const h = tarHeader(
      'x/link',
      entry({
        type: 'symlink',
        mode: 0o777,
        linkname: '/etc/passwd',
        uid: 300000,
        gid: 3000000,
        xattrs: { 'SCHILY.xattr.user.k': 'v' },
      }),
    );
    const bytes = await packed(quietPack(), [{ h }]);
    expect(linkpathRecords(bytes)).toBe(0);
    const [got] = await tarHeaders(bytes);
    expect([got.name, got.linkname]).toEqual(['x/link', '/etc/passwd']);
    expect(got.pax).toEqual({ uid: '300000', gid: '3000000', 'SCHILY.xattr.user.k': 'v' });
  });

  it('leaves every other header as tar-stream writes it, byte for byte', async () => {
    const long = `d/${'n'.repeat(120)}`;
    const items = [
      { h: tarHeader(long, entry({ type: 'directory', mode: 0o755 })) },
      { h: tarHeader(`${long}/ü`, entry({ size: 3 })), body: Buffer.from('abc') },
      { h: { ...tarHeader(`${long}/λ`, entry({})), type: 'link' as const, linkname: `${long}/ü`, size: 0 } },
      { h: tarHeader('dev/null', entry({ type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 })) },
      { h: tarHeader('big', entry({ uid: 262144, gid: 2097151 })) },
    ];
    const ours = await packed(quietPack(), items);
    const theirs = await packed(
      tar.pack(),
      items.map(({ h, body }) => ({ h: { ...h }, body })),
    );
    expect(ours.equals(theirs)).toBe(true);
  });

  it('writes owners beyond the six octal digits tar-stream writes in a pax record', async () => {
    // 262144 = 0o1000000: tar-stream would write 0o777777 (262143) in the field.
    const bytes = await packed(quietPack(), [{ h: tarHeader('f', entry({ uid: 262144, gid: 2097151 })) }]);
    const [got] = await tarHeaders(bytes);
    expect(got.pax).toMatchObject({ uid: '262144', gid: '2097151' });
  });

  it('counts a pax record its own length digits across every digit boundary', () => {
    for (let n = 1; n <= 1100; n++) {
      const r = paxRecord('k', 'v'.repeat(n));
      expect(Number(r.toString().split(' ')[0])).toBe(r.length);
    }
  });
});
