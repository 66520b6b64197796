/**
 * verify names the temp files a killed command leaves wherever it writes
 * in the tree: every directory under .sifkit/ (signatures, host snapshots,
 * test results, a job directory), found by walking, not from a list a new
 * writer would have to join. A live process's temp is work in progress.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTree } from '../../src/tree/root';
import { verifyTree } from '../../src/tree/verify';
import { TEMP_MARKER } from '../../src/util/files';
import { hostTag } from '../../src/util/process';

/** A process that has ended. */
const deadPid = () => Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$"'], { encoding: 'utf8' }).trim());

describe('verify: temp leftovers anywhere under .sifkit/', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-verify-temps-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('names the dead ones in every directory and --repair removes them; a live one is left', async () => {
    const { tree } = await initTree(path.join(dir, 'root'));
    const temp = (file: string, pid: number) =>
      path.join(path.dirname(file), `.${path.basename(file)}${TEMP_MARKER}${hostTag()}-${pid}-0123abcd`);
    const dead = deadPid();
    const left = [
      path.join(tree.state, 'signatures', 'a.sif.tested.json'),
      path.join(tree.state, 'hosts', 'lumi-g.json'),
      path.join(tree.results, 'a.sif.json'),
      path.join(tree.jobs, 'a-1', 'jobs.json'),
    ].map((f) => temp(f, dead));
    const live = temp(path.join(tree.results, 'b.sif.json'), process.pid);
    for (const f of [...left, live]) {
      await fs.mkdir(path.dirname(f), { recursive: true });
      await fs.writeFile(f, 'half');
    }
    const named = (await verifyTree(tree)).filter((p) => p.kind === 'temp-leftover').map((p) => p.path);
    expect(named.sort()).toEqual(left.map((f) => path.relative(tree.root, f)).sort());
    await verifyTree(tree, { repair: true });
    for (const f of left) await expect(fs.stat(f)).rejects.toThrow(/ENOENT/);
    await expect(fs.stat(live)).resolves.toBeDefined();
  });
});
