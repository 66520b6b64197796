import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSif, writeSif } from '../../src/sif/file';
import { Arch, DataType, FsType, PartType } from '../../src/sif/format';

/** The SIF library against the reference reader (Debian's siftool) and real mksquashfs. */
describe('SIF files read by siftool', () => {
  let dir: string;
  let squash: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-sif-'));
    await fs.mkdir(path.join(dir, 'root', 'bin'), { recursive: true });
    await fs.writeFile(path.join(dir, 'root', 'bin', 'hello'), 'hello\n');
    squash = path.join(dir, 'root.squashfs');
    execFileSync('mksquashfs', [path.join(dir, 'root'), squash, '-noappend', '-comp', 'gzip', '-quiet']);
  });

  const inputs = () => [
    {
      kind: 'data' as const,
      dataType: DataType.deffile,
      name: '',
      data: Buffer.from('bootstrap: docker-archive\nfrom: x.tar\n\n'),
    },
    {
      kind: 'data' as const,
      dataType: DataType.genericJson,
      name: 'oci-config.json',
      data: Buffer.from('{"Env":["A=1"]}'),
    },
    {
      kind: 'partition' as const,
      name: '',
      file: squash,
      partition: { fsType: FsType.squash, partType: PartType.primSys, arch: Arch.amd64 },
    },
  ];

  it('writes a SIF whose header, list and objects siftool reads as we do', async () => {
    const out = path.join(dir, 'a.sif');
    const written = await writeSif(out, inputs());
    const header = execFileSync('siftool', ['header', out]).toString();
    expect(header).toMatch(/Primary Architecture:\s+amd64/);
    expect(header).toMatch(/Data Offset:\s+32176/);
    const list = execFileSync('siftool', ['list', out]).toString();
    expect(list).toMatch(/Def\.FILE/);
    expect(list).toMatch(/JSON\.Generic/);
    expect(list).toMatch(/FS \(Squashfs\/\*System\/amd64\)/);
    expect(execFileSync('siftool', ['dump', '2', out]).toString()).toBe('{"Env":["A=1"]}');
    const back = await readSif(out);
    expect(back.descriptors.map((d) => d.id)).toEqual([1, 2, 3]);
    const part = back.descriptors[2];
    expect(Number(part.offset) % 4096).toBe(0);
    expect(part.offset).toBe(written.descriptors[2].offset);
    // The partition really is the squashfs, in place: unsquashfs lists it at the offset.
    const listing = execFileSync('unsquashfs', ['-o', String(part.offset), '-lln', out]).toString();
    expect(listing).toMatch(/squashfs-root\/bin\/hello/);
  });

  it('is byte-identical in deterministic mode, run after run', async () => {
    const a = path.join(dir, 'd1.sif');
    const b = path.join(dir, 'd2.sif');
    await writeSif(a, inputs(), { deterministic: true });
    await writeSif(b, inputs(), { deterministic: true });
    expect(Buffer.compare(await fs.readFile(a), await fs.readFile(b))).toBe(0);
  });

  it('reports corruption as a one-line error, never a crash', async () => {
    const good = await fs.readFile(path.join(dir, 'a.sif'));
    const cases: Array<[string, Buffer]> = [
      ['not a SIF', Buffer.from('hello world'.repeat(20))],
      ['truncated', good.subarray(0, 5000)],
      ['bad version', Buffer.concat([good.subarray(0, 0x2a), Buffer.from('02\0'), good.subarray(0x2d)])],
    ];
    for (const [name, bytes] of cases) {
      const f = path.join(dir, `${name.replace(/ /g, '-')}.sif`);
      await fs.writeFile(f, bytes);
      await expect(readSif(f)).rejects.toThrow(/not a valid SIF: /);
    }
  });
});
