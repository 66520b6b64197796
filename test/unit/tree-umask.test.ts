import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTree } from '../../src/tree/root';
import { mkdirShared } from '../../src/util/files';

// Under `umask 077` mkdir's 0755 became 0700: a tree users' modules point into that only its owner could enter.
describe('the tree under a strict umask', () => {
  let dir: string;
  let old: number;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-umask-'));
    old = process.umask(0o077);
  });
  afterEach(async () => {
    process.umask(old);
    await fs.rm(dir, { recursive: true, force: true });
  });

  const mode = async (p: string) => (await fs.stat(p)).mode & 0o7777;

  it('init makes the root and every directory of the layout readable and searchable by all', async () => {
    const root = path.join(dir, 'a', 'tree');
    const { tree } = await initTree(root);
    for (const d of [path.join(dir, 'a'), root, tree.tested, tree.sifImages, tree.easybuild, tree.state, tree.ledger])
      expect([d, (await mode(d)).toString(8)]).toEqual([d, '755']);
  });

  it('keeps what a made directory inherited (setgid, group write) and leaves existing directories alone', async () => {
    const team = path.join(dir, 'team');
    await fs.mkdir(team);
    await fs.chmod(team, 0o2770);
    await mkdirShared(path.join(team, 'x', 'y'));
    expect((await mode(team)).toString(8)).toBe('2770');
    // The umask took group write and other bits; setgid came from the parent.
    expect((await mode(path.join(team, 'x'))).toString(8)).toBe('2755');
    expect((await mode(path.join(team, 'x', 'y'))).toString(8)).toBe('2755');
  });
});
