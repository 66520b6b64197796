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
    for (const bad of ['15M', '16383K', '1.5G', '512', 'lots', '', '-1G']) expect(() => parseMem(bad)).toThrow(/at least 16M/);
  });
});
