/**
 * writeDirectOr (util/direct-file.ts): a write through O_DIRECT, or the
 * usual way where the file system refuses it only at the write (EINVAL),
 * never silently dropping a failure that is not that refusal.
 */
import { writeDirectOr } from '../../src/util/direct-file';

/** A handle recording its writes, failing with `code` when given one. */
function handle(code?: string) {
  const writes: Array<[number, number]> = [];
  return {
    writes,
    write: async (_b: Buffer, _o: number, length: number, at: number) => {
      if (code) throw Object.assign(new Error(code), { code });
      writes.push([length, at]);
      return { bytesWritten: length, buffer: _b };
    },
  };
}

const buf = Buffer.alloc(8192);

it('writes through O_DIRECT when it takes the write', async () => {
  const direct = handle();
  const buffered = handle();
  expect(await writeDirectOr(direct as never, buffered as never, buf, 8192, 4096)).toBe(true);
  expect(direct.writes).toEqual([[8192, 4096]]);
  expect(buffered.writes).toEqual([]);
});

it('writes the usual way, and says so, when O_DIRECT refuses the write (EINVAL)', async () => {
  const buffered = handle();
  expect(await writeDirectOr(handle('EINVAL') as never, buffered as never, buf, 8192, 4096)).toBe(false);
  expect(buffered.writes).toEqual([[8192, 4096]]);
});

it('a full disk through O_DIRECT is the error, not a second try', async () => {
  const buffered = handle();
  await expect(writeDirectOr(handle('ENOSPC') as never, buffered as never, buf, 8192, 0)).rejects.toMatchObject({
    code: 'ENOSPC',
  });
  expect(buffered.writes).toEqual([]);
});

it('without O_DIRECT, the usual way', async () => {
  const buffered = handle();
  expect(await writeDirectOr(undefined, buffered as never, buf, 100, 7)).toBe(true);
  expect(buffered.writes).toEqual([[100, 7]]);
});
