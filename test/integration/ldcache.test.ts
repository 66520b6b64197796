/**
 * ld.so.cache read by sifkit against `ldconfig -p` (glibc's own reader of
 * the same file) on this machine's cache and on a Debian image's, and a
 * cut cache refused.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { ElfError } from '../../src/elf/format';
import { parseLdCache } from '../../src/elf/ldcache';

jest.setTimeout(300_000);

/** `ldconfig -p`'s lines for x86-64 libc6 entries without hwcaps: name and path, in the cache's order. */
function ldconfigP(text: string): string[] {
  return text
    .split('\n')
    .map((l) => /^\t(\S+) \(libc6,x86-64\) => (\S+)$/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => `${m[1]} ${m[2]}`);
}

function ours(buf: Buffer): string[] {
  return parseLdCache(buf)
    .filter((e) => e.flags === 0x0303)
    .map((e) => `${e.name} ${e.path}`);
}

describe('ld.so.cache', () => {
  it("reads this machine's cache as ldconfig -p does", async () => {
    const want = ldconfigP(execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }));
    expect(want.length).toBeGreaterThan(50);
    expect(ours(await fs.readFile('/etc/ld.so.cache'))).toEqual(want);
  });

  it("reads a Debian image's cache as that image's ldconfig -p does", () => {
    const image = 'sifkit-test/debian-bookworm:mpi';
    const run = (cmd: string[]) =>
      execFileSync('docker', ['run', '--rm', '--network', 'none', '--entrypoint', cmd[0], image, ...cmd.slice(1)], {
        maxBuffer: 1 << 26,
      });
    const want = ldconfigP(run(['ldconfig', '-p']).toString('utf8'));
    expect(want.length).toBeGreaterThan(20);
    expect(ours(run(['cat', '/etc/ld.so.cache']))).toEqual(want);
  });

  it('refuses a cut cache in one ElfError', async () => {
    const buf = await fs.readFile('/etc/ld.so.cache');
    expect(() => parseLdCache(buf.subarray(0, 100))).toThrow(ElfError);
    expect(() => parseLdCache(Buffer.from('not a cache at all, no'))).toThrow(ElfError);
  });
});
