/**
 * The leak scan judges every member the image holds as a file, whatever
 * its tar type flag, and refuses a member it cannot read: what the
 * converter puts in the SIF, the scan has read.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type * as tar from 'tar-stream';
import { scanImageArchive } from '../../src/fileserver/leakscan';
import { FlatTree } from '../../src/convert/flatten';
import { tarBuffer, tarHeaders } from '../support/archives';

const LICENSED = Buffer.from('licensed bytes of a served file\n');
const digest = createHash('sha256').update(LICENSED).digest('hex');

/** A docker-save archive of one layer member's bytes (the manifest names it). */
async function saved(layer: Buffer): Promise<Readable> {
  const manifest = [{ Config: 'c.json', RepoTags: [], Layers: ['l0/layer.tar'] }];
  return Readable.from([
    await tarBuffer([
      { header: { name: 'l0/layer.tar', size: layer.length } as tar.Header, body: layer },
      { header: { name: 'l0/VERSION' } as tar.Header, body: Buffer.from('1.0') },
      { header: { name: 'c.json' } as tar.Header, body: Buffer.from('{"rootfs":{}}') },
      { header: { name: 'manifest.json' } as tar.Header, body: Buffer.from(JSON.stringify(manifest)) },
    ]),
  ]);
}

const needles = { digests: new Map([[digest, 'cpe.tar']]) };

it.each(['file', 'contiguous-file'] as const)('served content in a %s member is a leak', async (type) => {
  const layer = await tarBuffer([
    { header: { name: 'usr/lib/x.so', type, size: LICENSED.length } as tar.Header, body: LICENSED },
  ]);
  // The converter holds it as a file: the scan must have read it.
  const tree = new FlatTree();
  (await tarHeaders(layer)).forEach((h, seq) => tree.apply(0, seq, h as never));
  expect(tree.resolve('usr/lib/x.so')?.kind).toBe('file');
  const r = await scanImageArchive(await saved(layer), needles);
  expect(r.leaks).toEqual([{ layer: 'l0/layer.tar', path: '/usr/lib/x.so', why: 'served content' }]);
});

it("a member that is neither a tar, a gzip'd tar nor text is refused, not passed over", async () => {
  const xz = Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), LICENSED]);
  await expect(scanImageArchive(await saved(xz), needles)).rejects.toMatchObject({
    code: 'leak-scan',
    message: `image member "l0/layer.tar" is neither a tar, a gzip'd tar nor text: the scan cannot read it`,
  });
});

it.each(['./opt//cray/./lib/x.so', 'opt/cray//lib/x.so', '/opt/cray/lib/x.so'])(
  'a licensed path however the tar spells it (%s) is the path the converter makes, and a leak',
  async (name) => {
    const layer = await tarBuffer([{ header: { name, size: 3 } as tar.Header, body: Buffer.from('abc') }]);
    const r = await scanImageArchive(await saved(layer), { digests: new Map() });
    expect(r.leaks).toEqual([{ layer: 'l0/layer.tar', path: '/opt/cray/lib/x.so', why: 'licensed path' }]);
    if (name.startsWith('/')) return; // The converter refuses an absolute member outright.
    const tree = new FlatTree();
    (await tarHeaders(layer)).forEach((h, seq) => tree.apply(0, seq, h as never));
    expect(tree.resolve('opt/cray/lib/x.so')?.kind).toBe('file');
  },
);
