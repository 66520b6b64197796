import { parseCompression, parseMem } from '../../src/convert/squash-options';

describe('squashfs options', () => {
  it('takes the four compressors apptainer-era runtimes may read, and nothing else', () => {
    expect(['gzip', 'zstd', 'lz4', 'xz'].map(parseCompression)).toEqual(['gzip', 'zstd', 'lz4', 'xz']);
    expect(() => parseCompression('lzo')).toThrow('compression "lzo" is not one of gzip, zstd, lz4, xz');
    expect(() => parseCompression('GZIP')).toThrow(/is not one of/);
  });

  it('takes mksquashfs memory sizes of 16M or more, as mksquashfs would', () => {
    expect(parseMem('512m')).toBe('512M');
    expect(parseMem('2G')).toBe('2G');
    expect(parseMem('16384K')).toBe('16384K');
    expect(parseMem('16M')).toBe('16M');
    for (const bad of ['15M', '16383K', '1.5G', '512', 'lots', '', '-1G'])
      expect(() => parseMem(bad)).toThrow(/from 16M to 16384G/);
    // Absurd sizes never reach mksquashfs (it would overflow, or refuse with exit 1).
    for (const bad of ['16385G', '99999999999G', '9'.repeat(40) + 'K'])
      expect(() => parseMem(bad)).toThrow(/from 16M to 16384G/);
  });

  it("applies mksquashfs's own bound for the host it runs on: 75% of physical memory", () => {
    const gib24 = 24 * 2 ** 30;
    expect(parseMem('18G', gib24)).toBe('18G');
    expect(() => parseMem('19G', gib24)).toThrow(
      "mksquashfs memory 19G is more than mksquashfs takes here: 75% of this host's 24.0 GiB",
    );
    expect(parseMem('19G')).toBe('19G'); // where it runs is another host (a Slurm job): only the absolute bound
  });
});
