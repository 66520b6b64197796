/**
 * convert from a docker-archive with mksquashfs in memory: what it is fed
 * and told, the SIF finished around what it wrote, and on its failure
 * nothing left behind and its own words in the one-line error.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convert } from '../../src/convert/convert';
import { OperationError } from '../../src/errors';
import { readSif } from '../../src/sif/file';
import { legacyArchive, layerTar, tarHeaders } from '../support/archives';
import { FakeProcesses, command, type Call } from '../support/fake-processes';

let dir: string;
let archive: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-convert-unit-'));
  archive = path.join(dir, 'image.tar');
  await legacyArchive(archive, [
    await layerTar([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/hello', content: 'hello\n' },
    ]),
    await layerTar([
      { name: 'opt/', type: 'directory' },
      { name: 'opt/big', content: 'x'.repeat(200_000) },
    ]),
  ]);
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** The member names of a tar stream, as mksquashfs -tar would read them. */
async function members(bytes: Buffer): Promise<string[]> {
  return (await tarHeaders(bytes)).map((h) => h.name);
}

const arg = (c: Call, flag: string) => c.args[c.args.indexOf(flag) + 1];
/** What mksquashfs leaves at its output: the space before -offset, then a partition. */
const partition = (c: Call, body = 'hsqs fake partition') => ({
  [c.args[1]]: Buffer.concat([Buffer.alloc(Number(arg(c, '-offset'))), Buffer.from(body)]),
});

describe('convert docker-archive: (mksquashfs in memory)', () => {
  it('feeds the flattened layers to mksquashfs -tar and finishes the SIF around its partition', async () => {
    const processes = new FakeProcesses().on(command('mksquashfs'), () => ({ consumeStdin: true, writes: partition }));
    const out = path.join(dir, 'out.sif');
    const r = await convert(`docker-archive:${archive}`, out, { processes, compression: 'zstd', processors: 3 });
    const [call] = processes.calls;
    expect(call.args.slice(0, 4)).toEqual([
      '-',
      expect.stringContaining(path.join(dir, '.out.sif')),
      '-tar',
      '-noappend',
    ]);
    expect([arg(call, '-comp'), arg(call, '-processors'), arg(call, '-root-mode')]).toEqual(['zstd', '3', '755']);
    // mksquashfs -tar ignores -root-time: the image's creation time comes as SOURCE_DATE_EPOCH.
    expect(call.env.SOURCE_DATE_EPOCH).toBe(String(Date.UTC(2026, 0, 1) / 1000));
    expect(await members(call.stdin)).toEqual(expect.arrayContaining(['etc/hello', 'opt/big']));
    expect(r).toMatchObject({
      out,
      backend: 'native',
      source: `docker-archive:${archive}`,
      compression: 'zstd',
      arch: 'amd64',
    });
    const sif = await readSif(out);
    expect(sif.descriptors.at(-1)!.size).toBe(BigInt('hsqs fake partition'.length));
    expect((await fs.readdir(dir)).sort()).toEqual(['image.tar', 'out.sif']);
  });

  it('mksquashfs failing: no partial output is left, and the error quotes its last stderr line', async () => {
    const processes = new FakeProcesses().on(command('mksquashfs'), (c) => ({
      consumeStdin: true,
      writes: partition(c, 'half a parti'),
      stderr: 'Parallel Mksquashfs: Using 2 processors\nFATAL ERROR: Failed to write to output filesystem\n',
      exit: 1,
    }));
    const p = convert(`docker-archive:${archive}`, path.join(dir, 'out.sif'), { processes });
    await expect(p).rejects.toBeInstanceOf(OperationError);
    await expect(p).rejects.toMatchObject({
      code: 'mksquashfs-failed',
      message: 'mksquashfs failed (exit 1): FATAL ERROR: Failed to write to output filesystem',
    });
    expect(await fs.readdir(dir)).toEqual(['image.tar']);
  });

  it('mksquashfs refusing early (it stops reading): its words, not the broken pipe, and nothing left', async () => {
    const processes = new FakeProcesses().on(command('mksquashfs'), (c) => ({
      readStdinBytes: 512,
      writes: partition(c, ''),
      stderr: 'mksquashfs: invalid option -- bogus\n',
      exit: 1,
    }));
    await expect(convert(`docker-archive:${archive}`, path.join(dir, 'out.sif'), { processes })).rejects.toMatchObject({
      code: 'mksquashfs-failed',
      message: 'mksquashfs failed (exit 1): mksquashfs: invalid option -- bogus',
    });
    expect(await fs.readdir(dir)).toEqual(['image.tar']);
  });

  it('no mksquashfs here: says what to install', async () => {
    const processes = new FakeProcesses().missing('mksquashfs');
    await expect(convert(`docker-archive:${archive}`, path.join(dir, 'out.sif'), { processes })).rejects.toMatchObject({
      code: 'no-mksquashfs',
      hint: expect.stringContaining('squashfs-tools'),
    });
    expect(await fs.readdir(dir)).toEqual(['image.tar']);
  });

  it('Ctrl-C while mksquashfs runs kills it and leaves nothing', async () => {
    const processes = new FakeProcesses().on(command('mksquashfs'), (c) => ({
      consumeStdin: true,
      writes: partition(c, 'part'),
      hang: true,
    }));
    const ac = new AbortController();
    const p = convert(`docker-archive:${archive}`, path.join(dir, 'out.sif'), { processes, signal: ac.signal });
    const interrupted = expect(p).rejects.toMatchObject({ code: 'interrupted' });
    const { until } = await import('../support/poll');
    // Running: the SIF's temp file and a layer's image (conversion during the read) beside the archive;
    // the next layer's mksquashfs may have started too (a layer streams while the one before finishes).
    await until(async () => processes.calls.length > 0 && (await fs.readdir(dir)).length >= 3, 1);
    ac.abort();
    await interrupted;
    for (const c of processes.calls) expect(c.ended).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await fs.readdir(dir)).toEqual(['image.tar']);
  });
});
