/** peek(): a stream's head looked at without losing a byte; kindOfHead(): what that head says. */
import { PassThrough, Readable } from 'node:stream';
import { kindOfHead, peek } from '../../src/util/peek';

async function all(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

it('the head is n bytes whatever the chunks, and the body is every byte', async () => {
  const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
  for (const chunk of [1, 7, 512, 4096, 5000]) {
    const parts = [];
    for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.subarray(i, i + chunk));
    const { head, body } = await peek(Readable.from(parts), 512);
    expect(head.equals(bytes.subarray(0, 512))).toBe(true);
    expect((await all(body)).equals(bytes)).toBe(true);
  }
});

it('a stream shorter than n gives what there is', async () => {
  const { head, body } = await peek(Readable.from([Buffer.from('abc')]), 512);
  expect(head.toString()).toBe('abc');
  expect((await all(body)).toString()).toBe('abc');
});

it('an error after the head reaches the body; a stream that closes before its head is an error', async () => {
  const src = new PassThrough();
  src.write(Buffer.alloc(600, 1));
  const { body } = await peek(src, 512);
  const read = all(body);
  src.destroy(new Error('the engine went away'));
  await expect(read).rejects.toThrow('the engine went away');
  const short = new PassThrough();
  const p = peek(short, 512);
  short.write(Buffer.alloc(10));
  short.destroy();
  await expect(p).rejects.toThrow('closed before its end');
});

it('an error in the same tick as the head reaches the caller who listens after its await, never an unheard event', async () => {
  // A short member whose check fails at its end: head, end and error come before the caller's continuation.
  const src = new PassThrough();
  const p = peek(src, 4);
  // Once peek's reader flows: the head and the error in one tick, as a short member's end and check.
  await new Promise((r) => setImmediate(r));
  process.nextTick(() => {
    src.write(Buffer.from('abcdef'));
    src.destroy(new Error('layer 3 reads as another digest'));
  });
  const { head, body } = await p;
  expect(head.toString()).toBe('abcd');
  await expect(all(body)).rejects.toThrow('layer 3 reads as another digest');
});

it('kindOfHead: gzip, zstd, a ustar tar, the end marker alone, anything else', () => {
  const tarHead = Buffer.alloc(512);
  tarHead.write('ustar', 257, 'latin1');
  expect(kindOfHead(Buffer.from([0x1f, 0x8b, 8]))).toBe('gzip');
  expect(kindOfHead(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
  expect(kindOfHead(tarHead)).toBe('tar');
  expect(kindOfHead(Buffer.alloc(512))).toBe('empty-tar');
  // Zeros, but fewer than a tar block: not a tar.
  expect(kindOfHead(Buffer.alloc(100))).toBe('other');
  expect(kindOfHead(Buffer.from('{"config": 1}'))).toBe('other');
});
