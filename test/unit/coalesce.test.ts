/** coalesce(): small chunks gathered into big ones, every byte kept in order. */
import { Readable } from 'node:stream';
import { coalesce } from '../../src/util/coalesce';
import { prng } from '../support/hostile-strings';

/** What coalesce(size) sends for `chunks`, chunk by chunk ('data' events: a read() would join them). */
function through(chunks: Buffer[], size: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const c = Readable.from(chunks).pipe(coalesce(size));
  c.on('data', (b: Buffer) => out.push(b));
  return new Promise((resolve, reject) => {
    c.on('end', () => resolve(out));
    c.on('error', reject);
  });
}

const SEED = Number(process.env.SIFKIT_SEED ?? 20261204);

it(`keeps every byte in order and sends chunks of at least the size but the last (seed ${SEED})`, async () => {
  const rand = prng(SEED);
  for (let trial = 0; trial < 20; trial++) {
    const size = 1 + Math.floor(rand() * 5000);
    const chunks = Array.from({ length: Math.floor(rand() * 40) }, () =>
      Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 3000) }, () => Math.floor(rand() * 256))),
    );
    const out = await through(chunks, size);
    expect(Buffer.concat(out).equals(Buffer.concat(chunks))).toBe(true);
    out.slice(0, -1).forEach((c) => expect(c.length).toBeGreaterThanOrEqual(size));
    // Never more than a chunk's worth of holding: each sent chunk is under the size plus the last piece.
    out.forEach((c) => expect(c.length).toBeLessThan(size + 3000));
  }
});

it('an empty stream gives nothing; one chunk bigger than the size goes as it is', async () => {
  expect(await through([], 16)).toEqual([]);
  const big = Buffer.alloc(100, 7);
  const [only] = await through([big], 16);
  expect(only).toBe(big);
});
