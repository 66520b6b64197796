/** The sifkit command runs node with NODE_FLAGS: the launcher's exec line and the list are one. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { NODE_FLAGS } from '../../src/cli/node-flags';

it('bin/sifkit starts node with exactly NODE_FLAGS before main.js', () => {
  const launcher = readFileSync(path.join(__dirname, '..', '..', 'bin', 'sifkit'), 'utf8');
  const exec = launcher.split('\n').filter((l) => l.startsWith('exec node '));
  expect(exec).toHaveLength(1);
  expect(exec[0]).toBe(`exec node ${NODE_FLAGS.join(' ')} "$(dirname -- "$self")/../dist/src/cli/main.js" "$@"`);
});
