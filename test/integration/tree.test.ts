import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { makeSif } from '../support/sifs';
import { readAudit } from '../../src/tree/audit';

jest.setTimeout(300_000);

const STEM = 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6';

async function newRoot(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-tree-'));
}

/** Everything in the tree but the audit log (which records refusals too), byte for byte. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(rel: string): Promise<void> {
    for (const name of (await fs.readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.sifkit/audit.log') continue;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs);
      if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o7777).toString(8)}`;
        await walk(r);
      } else if (st.isSymbolicLink()) out[r] = `link ${await fs.readlink(abs)}`;
      else
        out[r] = `file ${(st.mode & 0o7777).toString(8)} ${createHash('sha256')
          .update(await fs.readFile(abs))
          .digest('hex')}`;
    }
  }
  await walk('');
  return out;
}

async function verifyClean(root: string, deep = false): Promise<void> {
  const r = await runCli(['verify', '--root', root, '--json', ...(deep ? ['--deep'] : [])]);
  expect({ code: r.code, problems: JSON.parse(r.stdout).problems }).toEqual({ code: 0, problems: [] });
}

describe('container tree: stage, promote, status, verify', () => {
  let root: string;
  let work: string;
  beforeAll(async () => {
    root = await newRoot();
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-tree-work-'));
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
    await fs.rm(work, { recursive: true, force: true });
  });

  it('stages under the dockerhash name, promotes to both directories, and reports it', async () => {
    const sif = path.join(work, 'a.sif');
    const { name, dockerhash } = await makeSif(sif, {
      stem: STEM,
      created: '2026-01-01T00:00:00Z',
      params: { rocm: '6.2.0', python: '3.12', mpi4py: '3.1.6' },
    });
    const staged = await runCli(['stage', sif, '--untested', '--root', root, '--json']);
    expect(staged.code).toBe(0);
    const target = path.join(root, 'tested-containers', name);
    expect(JSON.parse(staged.stdout).staged).toMatchObject({ name, path: target });
    expect((await fs.stat(target)).mode & 0o777).toBe(0o644);
    const promoted = await runCli(['promote', name, '--to', 'all', '--root', root, '--json']);
    expect(promoted.code).toBe(0);
    const eb = path.join(root, 'easybuild-sif-images', name);
    // A hard link on the same file system: one inode, no copy.
    expect((await fs.stat(eb)).ino).toBe((await fs.stat(target)).ino);
    expect(await fs.readlink(path.join(root, 'sif-images', `${STEM}.sif`))).toBe(`../easybuild-sif-images/${name}`);
    const status = JSON.parse((await runCli(['status', '--root', root, '--json'])).stdout);
    expect(status.images).toEqual([
      expect.objectContaining({
        name,
        stem: STEM,
        dockerhash,
        dirs: ['tested-containers', 'easybuild-sif-images'],
        links: [`sif-images/${STEM}.sif`],
        checksum: 'ok-cached',
        params: { rocm: '6.2.0', python: '3.12', mpi4py: '3.1.6' },
      }),
    ]);
    await verifyClean(root, true);
    const audit = await readAudit(path.join(root, '.sifkit', 'audit.log'));
    expect(audit.map((a) => [a.action, a.outcome])).toEqual([
      ['stage', 'ok'],
      ['promote', 'ok'],
    ]);
    expect(audit[0].files[0].sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('moves a link forward only, unless --rollback', async () => {
    const older = await makeSif(path.join(work, 'old.sif'), { stem: STEM, created: '2025-06-01T00:00:00Z' });
    expect((await runCli(['stage', path.join(work, 'old.sif'), '--untested', '--root', root])).code).toBe(0);
    const before = await snapshot(root);
    const r = await runCli(['promote', older.name, '--to', 'sif-images', '--root', root]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/which is newer than .*\nsifkit: hint: use --rollback/);
    expect(await snapshot(root)).toEqual(before);
    const back = await runCli(['promote', older.name, '--to', 'sif-images', '--rollback', '--root', root]);
    expect(back.code).toBe(0);
    expect(await fs.readlink(path.join(root, 'sif-images', `${STEM}.sif`))).toBe(`../tested-containers/${older.name}`);
  });

  it('loses no update when 8 processes promote at once', async () => {
    const r8 = await newRoot();
    const names: string[] = [];
    for (let i = 0; i < 8; i++) {
      const f = path.join(work, `c${i}.sif`);
      names.push((await makeSif(f, { stem: STEM, created: `2026-02-0${i + 1}T00:00:00Z` })).name);
    }
    const staged = await Promise.all(
      names.map((_, i) => runCli(['stage', path.join(work, `c${i}.sif`), '--untested', '--root', r8])),
    );
    expect(staged.map((s) => s.code)).toEqual(Array(8).fill(0));
    const results = await Promise.all(names.map((n) => runCli(['promote', n, '--to', 'all', '--root', r8])));
    // Each either moved the link or was refused for being older than what another had linked.
    for (const r of results) expect([0, 3]).toContain(r.code);
    expect(results.filter((r) => r.code === 3).every((r) => /newer than/.test(r.stderr))).toBe(true);
    // The newest always wins, whatever the order.
    const newest = names[7];
    expect(await fs.readlink(path.join(r8, 'sif-images', `${STEM}.sif`))).toBe(`../easybuild-sif-images/${newest}`);
    const eb = await fs.readdir(path.join(r8, 'easybuild-sif-images'));
    // A refused promote refused before its first change: only the accepted ones are in easybuild.
    for (const [i, n] of names.entries()) expect(eb.includes(n)).toBe(results[i].code === 0);
    const audit = await readAudit(path.join(r8, '.sifkit', 'audit.log'));
    expect(audit.filter((a) => a.action === 'stage')).toHaveLength(8);
    expect(audit.filter((a) => a.action === 'promote')).toHaveLength(8);
    await verifyClean(r8, true);
    await fs.rm(r8, { recursive: true, force: true });
  });

  // Kills at random instants: test/integration/torture.test.ts (seeded, instants drawn inside measured run times).

  describe('a failure: checked before the first change, or rolled back, and the message says which', () => {
    let rf: string;
    let name: string;
    beforeEach(async () => {
      rf = await newRoot();
      const f = path.join(work, 'fail.sif');
      name = (await makeSif(f, { stem: `${STEM}-fail` })).name;
      expect((await runCli(['stage', f, '--untested', '--root', rf])).code).toBe(0);
    });
    afterEach(() => fs.rm(rf, { recursive: true, force: true }));

    it('promote with an unwritable audit log: exit 1 before any change', async () => {
      // A directory where the log should be: unwritable even for root.
      await fs.rename(path.join(rf, '.sifkit', 'audit.log'), path.join(work, 'audit.log.aside'));
      await fs.mkdir(path.join(rf, '.sifkit', 'audit.log'));
      const before = await snapshot(rf);
      const r = await runCli(['promote', name, '--to', 'all', '--root', rf]);
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n')[0]).toMatch(
        /^sifkit: error: cannot write the audit log .*audit\.log: .*; nothing was changed$/,
      );
      expect(await snapshot(rf)).toEqual(before);
    });

    it('promote --to all whose link cannot be made: the easybuild copy is rolled back', async () => {
      if (process.getuid?.() !== 0) throw new Error('this test bind-mounts read-only and must run as root (CI does)');
      const links = path.join(rf, 'sif-images');
      const before = await snapshot(rf);
      execFileSync('mount', ['--bind', links, links]);
      execFileSync('mount', ['-o', 'remount,ro,bind', links]);
      let r;
      try {
        r = await runCli(['promote', name, '--to', 'all', '--root', rf]);
      } finally {
        execFileSync('umount', [links]);
      }
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n')[0]).toMatch(
        /read-only file system.*; its changes were rolled back, the tree is as before$/,
      );
      expect(await snapshot(rf)).toEqual(before);
      const audit = await readAudit(path.join(rf, '.sifkit', 'audit.log'));
      expect(audit.at(-1)).toMatchObject({
        action: 'promote',
        outcome: 'failed',
        error: expect.stringMatching(/rolled back/),
      });
    });
  });

  describe('bad input: a clear error, and the tree byte for byte unchanged', () => {
    let rb: string;
    let good: string;
    let before: Record<string, string>;
    beforeAll(async () => {
      rb = await newRoot();
      const f = path.join(work, 'good.sif');
      good = (await makeSif(f, { stem: STEM })).name;
      expect((await runCli(['stage', f, '--untested', '--root', rb])).code).toBe(0);
      expect((await runCli(['promote', good, '--to', 'all', '--root', rb])).code).toBe(0);
    });
    beforeEach(async () => {
      before = await snapshot(rb);
    });
    afterEach(async () => {
      expect(await snapshot(rb)).toEqual(before);
    });
    afterAll(() => fs.rm(rb, { recursive: true, force: true }));

    const oneLine = (stderr: string) => expect(stderr.split('\n')[0]).toMatch(/^sifkit: error: \S/);

    it('an unknown name', async () => {
      const r = await runCli(['promote', `${STEM}-dockerhash-000000000000.sif`, '--to', 'all', '--root', rb]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/no staged image/);
      oneLine(r.stderr);
    });

    it('a path with ..', async () => {
      const r = await runCli(['promote', '../../etc/passwd', '--to', 'all', '--root', rb]);
      expect(r.code).toBe(2);
      oneLine(r.stderr);
    });

    it('a sif-images link pointing outside the root', async () => {
      const link = path.join(rb, 'sif-images', `${STEM}.sif`);
      await fs.rm(link);
      await fs.symlink('/etc/passwd', link);
      before = await snapshot(rb);
      const r = await runCli(['promote', good, '--to', 'all', '--root', rb]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/points outside the tree/);
      const v = await runCli(['verify', '--root', rb, '--json']);
      expect(JSON.parse(v.stdout).problems.map((p: { kind: string }) => p.kind)).toEqual(['escaping-link']);
    });

    it('sif-images/ itself a link to outside the root (or to nothing): refused, nothing written there', async () => {
      const dir = path.join(rb, 'sif-images');
      const elsewhere = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-elsewhere-'));
      await fs.rename(dir, `${dir}.real`);
      try {
        for (const target of [elsewhere, path.join(elsewhere, 'missing')]) {
          await fs.symlink(target, dir);
          before = await snapshot(rb);
          const r = await runCli(['promote', good, '--to', 'sif-images', '--root', rb]);
          expect({ code: r.code, line: r.stderr.split('\n')[0] }).toEqual({
            code: 3,
            line: expect.stringMatching(
              /^sifkit: error: sif-images is a link (to ".*", outside .*|to nothing); refusing to use it$/,
            ),
          });
          expect(await fs.readdir(elsewhere)).toEqual([]);
          expect(await snapshot(rb)).toEqual(before);
          await fs.rm(dir);
        }
      } finally {
        await fs.rm(dir, { force: true });
        await fs.rename(`${dir}.real`, dir);
        await fs.rm(elsewhere, { recursive: true, force: true });
      }
      before = await snapshot(rb);
    });

    it('a corrupted SIF, given to stage or corrupted in place', async () => {
      const bad = path.join(work, 'corrupt.sif');
      await makeSif(bad, { stem: STEM });
      const fh = await fs.open(bad, 'r+');
      await fh.write(Buffer.from('XXXXXXXX'), 0, 8, 0x20);
      await fh.close();
      const r = await runCli(['stage', bad, '--untested', '--root', rb]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/not a valid SIF/);
      // In place: flip one byte of the staged file (hard-linked into easybuild too).
      const staged = path.join(rb, 'tested-containers', good);
      const orig = await fs.readFile(staged);
      const h = await fs.open(staged, 'r+');
      await h.write(Buffer.from([orig[40000] ^ 0xff]), 0, 1, 40000);
      await h.close();
      const corrupted = await snapshot(rb);
      const p = await runCli(['promote', good, '--to', 'sif-images', '--root', rb]);
      expect(p.code).toBe(3);
      expect(await snapshot(rb)).toEqual(corrupted);
      expect(p.stderr).toMatch(/does not match its recorded sha256/);
      const v = JSON.parse((await runCli(['verify', '--root', rb, '--json'])).stdout);
      expect(v.problems.map((x: { kind: string }) => x.kind)).toContain('checksum-mismatch');
      await fs.writeFile(staged, orig);
    });

    it('a read-only directory', async () => {
      if (process.getuid?.() !== 0) throw new Error('this test bind-mounts read-only and must run as root (CI does)');
      const second = path.join(work, 'second.sif');
      const { name } = await makeSif(second, { stem: `${STEM}-ro`, created: '2027-01-01T00:00:00Z' });
      const tested = path.join(rb, 'tested-containers');
      execFileSync('mount', ['--bind', tested, tested]);
      execFileSync('mount', ['-o', 'remount,ro,bind', tested]);
      try {
        const r = await runCli(['stage', second, '--untested', '--root', rb]);
        expect(r.code).not.toBe(0);
        oneLine(r.stderr);
        expect(r.stderr).toMatch(/EROFS|read-only/i);
        expect(r.stderr).not.toMatch(/internal error/);
      } finally {
        execFileSync('umount', [tested]);
      }
      expect(name).toBeTruthy();
    });
  });
});
