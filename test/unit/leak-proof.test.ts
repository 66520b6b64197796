/**
 * Pure parts of issue 17: the image-config scan, the verdict rule, the
 * derived SIF UUID and time, and tar headers that keep every mode bit and
 * any owner through tar-stream's packer (property-based, seeded).
 */
import { type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as fc from 'fast-check';
import * as tar from 'tar-stream';
import { orderedLeaks, scanImageConfig, type Leak } from '../../src/fileserver/leakscan';
import { SCANNER_VERSION, verdictHolds, type Verdict } from '../../src/engine/verdict';
import { imageTime, sifUuid } from '../../src/convert/reproducible';
import { sourceFromDeffile } from '../../src/convert/reconvert';
import { tarHeader } from '../../src/convert/squash';
import { toEntry, type Entry, type EntryType } from '../../src/convert/flatten';

const DIGEST = 'ab'.repeat(32);

describe('image config scan', () => {
  const config = (over: Record<string, unknown>) =>
    JSON.stringify({
      architecture: 'amd64',
      config: { Env: ['PATH=/bin'] },
      history: [{ created_by: '/bin/sh -c #(nop) ENV X=1' }],
      rootfs: {},
      ...over,
    });
  it('passes a clean config; the port in the history is a stable build argument, not a leak', () => {
    expect(
      scanImageConfig(
        config({
          history: [
            {
              created_by:
                '|2 SERVED_DIGEST=00 SERVER_PORT=21234 /bin/sh -c curl http://127.0.0.1:${SERVER_PORT}/cpe.tar',
            },
          ],
        }),
        { digests: new Map([[DIGEST, 'cpe.tar']]), serverPort: 21234 },
      ),
    ).toEqual([]);
  });
  it('finds a served digest anywhere, the server URL in env or labels (keys too), and an old secret prefix', () => {
    const leaks = scanImageConfig(
      config({
        config: {
          Env: ['CPE_URL=http://localhost:21234/x/cpe.tar'],
          Labels: { [`sum-${DIGEST}`]: 'v' },
          Cmd: ['127.0.0.1:21234'],
        },
        history: [{ created_by: `|2 SERVER_PORT=1 SERVER_PREFIX=abc /bin/sh -c echo ${DIGEST}` }],
      }),
      { digests: new Map([[DIGEST, 'cpe.tar']]), serverPort: 21234 },
    );
    expect(leaks.map((l) => `${l.path} ${l.why}`).sort()).toEqual(
      [
        'config.Cmd[0] server URL',
        'config.Env[0] server URL',
        `config.Labels.sum-${DIGEST} (key) served digest`,
        'history[0].created_by served digest',
        'history[0].created_by server prefix',
      ].sort(),
    );
    // Another port is not this server's.
    expect(
      scanImageConfig(config({ config: { Env: ['U=http://127.0.0.1:212345/'] } }), {
        digests: new Map(),
        serverPort: 21234,
      }),
    ).toEqual([]);
  });
  it('ignores JSON that is not an image config (manifest.json); a member that is not JSON is one line', () => {
    expect(scanImageConfig(JSON.stringify([{ Config: DIGEST }]), { digests: new Map([[DIGEST, 'x']]) })).toEqual([]);
    expect(() => scanImageConfig('{not json', { digests: new Map() }, 'image member x.json')).toThrow(
      /^image member x\.json: not valid JSON: /,
    );
  });
});

describe('scan verdict rule', () => {
  const id = `sha256:${'1'.repeat(64)}`;
  const roles = 'cpe.tar licensed\nrocminfo tool /opt/rocm/bin/rocminfo';
  const v: Verdict = {
    imageId: id,
    passed: true,
    scanner: SCANNER_VERSION,
    servedDigest: 'd1',
    roles,
    scannedAt: '',
    layers: 1,
    files: 1,
    bytes: 1,
  };
  it('holds only for a pass on this ID by this scanner, over the same served files when asked', () => {
    expect(verdictHolds(v, id, { digest: 'd1', roles })).toBe(true);
    expect(verdictHolds(v, id)).toBe(true);
    expect(verdictHolds(undefined, id)).toBe(false);
    expect(verdictHolds({ ...v, passed: false }, id)).toBe(false);
    expect(verdictHolds(v, `sha256:${'2'.repeat(64)}`)).toBe(false);
    expect(verdictHolds({ ...v, scanner: SCANNER_VERSION - 1 }, id)).toBe(false);
    expect(verdictHolds(v, id, { digest: 'd2', roles })).toBe(false);
    expect(verdictHolds({ ...v, servedDigest: undefined }, id, { digest: undefined, roles })).toBe(true);
  });
  it('does not hold for a build that judges the same files by other roles', () => {
    expect(verdictHolds(v, id, { digest: 'd1', roles: 'cpe.tar licensed\nrocminfo licensed' })).toBe(false);
    expect(
      verdictHolds(v, id, { digest: 'd1', roles: 'cpe.tar licensed\nrocminfo tool /opt/rocm-6.2.0/bin/rocminfo' }),
    ).toBe(false);
    expect(verdictHolds({ ...v, roles: undefined }, id, { digest: 'd1', roles })).toBe(false);
  });
});

describe('reproducible SIF values', () => {
  it('derives a version-8 UUID from image, version and options, never the same for other inputs', () => {
    const a = sifUuid('sha256:1', '0.1.0', { compression: 'gzip', fixPerms: false });
    expect(a).toEqual(sifUuid('sha256:1', '0.1.0', { compression: 'gzip', fixPerms: false }));
    expect(a[6] >> 4).toBe(8);
    expect(a[8] >> 6).toBe(2);
    for (const other of [
      sifUuid('sha256:2', '0.1.0', { compression: 'gzip', fixPerms: false }),
      sifUuid('sha256:1', '0.1.1', { compression: 'gzip', fixPerms: false }),
      sifUuid('sha256:1', '0.1.0', { compression: 'zstd', fixPerms: false }),
      sifUuid('sha256:1', '0.1.0', { compression: 'gzip', fixPerms: true }),
    ])
      expect(other).not.toEqual(a);
  });
  it('takes times from the image, the epoch when it has none, never the clock', () => {
    expect(imageTime('2024-05-06T07:08:09.5Z').toISOString()).toBe('2024-05-06T07:08:09.500Z');
    expect(imageTime(undefined).getTime()).toBe(0);
    expect(imageTime('not a time').getTime()).toBe(0);
  });
  it('reads the source back from the definition file', () => {
    expect(sourceFromDeffile('bootstrap: docker-daemon\nfrom: lumi/x:y\n\n')).toBe('docker-daemon:lumi/x:y');
    // A SIF never chooses a host file for sifkit to open, nor an odd engine reference.
    expect(() => sourceFromDeffile('bootstrap: docker-archive\nfrom: /etc/passwd\n', 'x.sif')).toThrow(
      /^x.sif names its source as "docker-archive:\/etc\/passwd"; sifkit takes only an engine image/,
    );
    expect(() => sourceFromDeffile('bootstrap: docker-daemon\nfrom: ../x\u001b[2J\n')).toThrow(/never a host file/);
    expect(sourceFromDeffile('bootstrap: library\nfrom: x\n')).toBeUndefined();
    expect(sourceFromDeffile(undefined)).toBeUndefined();
  });
});

describe('tar headers keep every mode bit and any owner through the packer', () => {
  async function roundTrip(h: tar.Header): Promise<tar.Header> {
    const pack = tar.pack();
    pack.entry(h, Buffer.alloc(h.size ?? 0));
    pack.finalize();
    let got: tar.Header | undefined;
    const extract = tar.extract();
    extract.on('entry', (header, body, next) => {
      got = header;
      body.resume();
      body.on('end', next);
    });
    await pipeline(pack as unknown as Readable, extract);
    return got!;
  }
  const types: EntryType[] = ['file', 'directory', 'symlink', 'fifo', 'character-device', 'block-device'];
  it('mode 0..07777, uid/gid 0..2^32-2, any type, mtime to the second (seeded)', async () => {
    const seed = Number(process.env.SIFKIT_SEED ?? 17017);
    await fc
      .assert(
        fc.asyncProperty(
          fc.constantFrom(...types),
          fc.integer({ min: 0, max: 0o7777 }),
          fc.integer({ min: 0, max: 2 ** 32 - 2 }),
          fc.integer({ min: 0, max: 2 ** 32 - 2 }),
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          async (type, mode, uid, gid, secs) => {
            const e: Entry = {
              type,
              mode,
              uid,
              gid,
              mtime: new Date(secs * 1000),
              size: type === 'file' ? 3 : 0,
              linkname: type === 'symlink' ? 't' : undefined,
            };
            const back = toEntry((await roundTrip(tarHeader('p', e))) as never, type);
            expect({ mode: back.mode, uid: back.uid, gid: back.gid, mtime: back.mtime.getTime() }).toEqual({
              mode,
              uid,
              gid,
              mtime: secs * 1000,
            });
          },
        ),
        { seed, numRuns: 300, verbose: true },
      )
      .catch((err) => {
        throw new Error(`seed ${seed}: ${(err as Error).message}`);
      });
  });
});

describe('leak order', () => {
  it('is the same whatever order the archive members came in, each leak once, the config first', () => {
    const leaks: Leak[] = [
      { layer: 'image config', path: 'container_config.Env[3]', why: 'server URL' },
      { layer: 'image config', path: 'config.Env[3]', why: 'server URL' },
      { layer: 'abc/layer.tar', path: '/opt/cray/x', why: 'licensed path' },
      { layer: 'image config', path: 'config.Env[3]', why: 'server URL' },
      { layer: '0ab/layer.tar', path: '/cpe.tar', why: 'served content' },
    ];
    const expected = orderedLeaks(leaks);
    expect(expected.map((l) => `${l.layer} ${l.path}`)).toEqual([
      'image config config.Env[3]',
      'image config container_config.Env[3]',
      '0ab/layer.tar /cpe.tar',
      'abc/layer.tar /opt/cray/x',
    ]);
    fc.assert(
      fc.property(fc.shuffledSubarray(leaks, { minLength: leaks.length }), (shuffled) => {
        expect(orderedLeaks(shuffled)).toEqual(expected);
      }),
      { seed: 17171, numRuns: 100 },
    );
  });
});
