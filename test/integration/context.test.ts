import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { contextTar } from '../../src/engine/context';
import { listContext } from '../../src/recipe/load';

describe('build context on a real file system', () => {
  it('honours .dockerignore and streams the rendered Dockerfile first', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-ctx-'));
    await fs.mkdir(path.join(dir, 'sub', 'deep'), { recursive: true });
    await fs.mkdir(path.join(dir, 'build'));
    await fs.writeFile(path.join(dir, '.dockerignore'), '*.log\nbuild\n**/*.tmp\n!keep.log\n');
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM stale\n');
    await fs.writeFile(path.join(dir, 'a.txt'), 'a');
    await fs.writeFile(path.join(dir, 'x.log'), 'log');
    await fs.writeFile(path.join(dir, 'keep.log'), 'keep');
    await fs.writeFile(path.join(dir, 'build', 'out.o'), 'o');
    await fs.writeFile(path.join(dir, 'sub', 'deep', 'c.tmp'), 'tmp');
    await fs.writeFile(path.join(dir, 'sub', 'deep', 'c.py'), 'print(1)');
    await fs.symlink('a.txt', path.join(dir, 'link'));

    const files = await listContext(dir);
    const names: string[] = [];
    const contents: Record<string, string> = {};
    const extract = tar.extract();
    extract.on('entry', (h, s, next) => {
      names.push(h.name);
      let body = '';
      s.on('data', (d: unknown) => (body += String(d)));
      s.on('end', () => {
        contents[h.name] = body;
        next();
      });
    });
    await pipeline(contextTar('FROM rendered\n', files), extract);
    expect(names[0]).toBe('Dockerfile');
    expect(contents.Dockerfile).toBe('FROM rendered\n');
    expect(names.sort()).toEqual(
      ['Dockerfile', 'a.txt', 'keep.log', 'link', 'sub', 'sub/deep', 'sub/deep/c.py'].sort(),
    );
    expect(contents['sub/deep/c.py']).toBe('print(1)');
  });

  it('gives each entry the mode the definition hash keys, whatever the checkout made of it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifkit-ctx-modes-'));
    await fs.mkdir(path.join(dir, 'group-writable'));
    await fs.writeFile(path.join(dir, 'group-writable', 'run.py'), 'print(1)');
    await fs.writeFile(path.join(dir, 'private.txt'), 'p');
    await fs.writeFile(path.join(dir, 'owner-exec.sh'), 'true');
    // What a umask of 002 or 077 leaves: the tar says 0755/0644 all the same.
    await fs.chmod(path.join(dir, 'group-writable'), 0o775);
    await fs.chmod(path.join(dir, 'group-writable', 'run.py'), 0o775);
    await fs.chmod(path.join(dir, 'private.txt'), 0o600);
    await fs.chmod(path.join(dir, 'owner-exec.sh'), 0o700);
    const modes: Record<string, number> = {};
    const extract = tar.extract();
    extract.on('entry', (h, s, next) => {
      modes[h.name] = h.mode ?? -1;
      s.on('end', next);
      s.resume();
    });
    await pipeline(contextTar('FROM rendered\n', await listContext(dir)), extract);
    expect(modes).toEqual({
      Dockerfile: 0o644,
      'group-writable': 0o755,
      'group-writable/run.py': 0o755,
      'private.txt': 0o644,
      'owner-exec.sh': 0o755,
    });
  });
});
