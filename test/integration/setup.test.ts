/**
 * scripts/setup.sh, what `npm run demo` and `npm test` run first: silent and
 * quick when all is there, one line naming the packages to ask for without
 * root, and the node_modules staleness check it uses before `npm ci`.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

jest.setTimeout(120_000);

const REPO = path.join(__dirname, '..', '..');

describe('scripts/setup.sh', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-setup-'));
    await fs.chmod(dir, 0o755);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  /** A copy of the scripts with its own package list and lock, to try states this machine is not in. */
  async function copy(
    name: string,
    packages: string,
    lock?: object,
    installed: Record<string, string> = {},
  ): Promise<string> {
    const root = path.join(dir, name);
    await fs.mkdir(path.join(root, 'scripts'), { recursive: true });
    for (const f of ['setup.sh', 'deps-stale.js'])
      await fs.copyFile(path.join(REPO, 'scripts', f), path.join(root, 'scripts', f));
    await fs.writeFile(path.join(root, 'scripts', 'debian-packages.txt'), packages);
    if (lock) await fs.writeFile(path.join(root, 'package-lock.json'), JSON.stringify(lock));
    for (const [pkg, version] of Object.entries(installed)) {
      await fs.mkdir(path.join(root, 'node_modules', pkg), { recursive: true });
      await fs.writeFile(path.join(root, 'node_modules', pkg, 'package.json'), JSON.stringify({ name: pkg, version }));
    }
    await fs.chmod(root, 0o755);
    return root;
  }

  it('does nothing and says nothing when everything is there (this machine, as root)', async () => {
    // This checkout's launcher first on PATH, as the path step writes it: whatever sifkit
    // the machine has elsewhere (CI's own set-up, another clone) is then not the one found.
    const bin = path.join(dir, 'bin');
    await fs.mkdir(bin, { recursive: true });
    const here = await fs.realpath(REPO);
    await fs.writeFile(path.join(bin, 'sifkit'), `#!/bin/sh\nexec node "${here}/dist/src/cli/main.js" "$@"\n`, {
      mode: 0o755,
    });
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const r = spawnSync('bash', [path.join(REPO, 'scripts', 'setup.sh')], { encoding: 'utf8', env });
    expect({ code: r.status, stderr: r.stderr, stdout: r.stdout }).toEqual({ code: 0, stderr: '', stdout: '' });
  });

  it('without root, names the missing packages in one line and stops', async () => {
    const root = await copy('noroot', '# comment\nbash   # here\nsifkit-no-such-package  # why\nsifkit-nor-this\n');
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', path.join(root, 'scripts', 'setup.sh'), 'packages'],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      'sifkit setup: missing Debian packages, ask an administrator to install: sifkit-no-such-package sifkit-nor-this\n',
    );
  });

  it('finds node_modules stale when a locked version differs or a package is missing', async () => {
    const lock = {
      packages: {
        '': {},
        'node_modules/a': { version: '1.0.0' },
        'node_modules/b': { version: '2.0.0' },
        'node_modules/opt': { version: '1.0.0', optional: true },
      },
    };
    const stale = (root: string) =>
      spawnSync('node', [path.join(root, 'scripts', 'deps-stale.js')], { encoding: 'utf8' });
    const same = stale(await copy('same', '', lock, { a: '1.0.0', b: '2.0.0' }));
    expect({ code: same.status, out: same.stdout }).toEqual({ code: 0, out: '' });
    const older = stale(await copy('older', '', lock, { a: '1.0.0', b: '1.9.0' }));
    expect({ code: older.status, out: older.stdout }).toEqual({
      code: 1,
      out: 'b is 1.9.0, package-lock.json wants 2.0.0\n',
    });
    const missing = stale(await copy('missing', '', lock, { a: '1.0.0' }));
    expect({ code: missing.status, out: missing.stdout }).toEqual({ code: 1, out: 'b is not installed\n' });
    const none = stale(await copy('none', '', lock));
    expect({ code: none.status, out: none.stdout }).toEqual({ code: 1, out: 'node_modules is missing\n' });
  });

  it('does not run npm ci over a node_modules that is a link to another checkout', async () => {
    const root = await copy('linked', '', { packages: { 'node_modules/a': { version: '1.0.0' } } });
    const elsewhere = await copy('elsewhere', '', undefined, { a: '0.9.0' });
    await fs.symlink(path.join(elsewhere, 'node_modules'), path.join(root, 'node_modules'));
    const r = spawnSync('bash', [path.join(root, 'scripts', 'setup.sh'), 'npm'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `sifkit setup: node_modules is a link to ${path.join(elsewhere, 'node_modules')} and a is 0.9.0, package-lock.json wants 1.0.0; not touching it: run npm ci there\n`,
    );
    expect(await fs.readFile(path.join(elsewhere, 'node_modules', 'a', 'package.json'), 'utf8')).toContain('0.9.0');
  });
});
