// Jest's global setup for the integration tests: the Debian packages and the
// services (engine, base images, munge, Slurm), started only when missing.
// `npm test` has already run the package and npm steps in its pretest; this
// makes a bare `npx jest test/integration/...` work on a fresh machine too.
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = async () => {
  execFileSync('bash', [path.join(__dirname, '..', '..', 'scripts', 'setup.sh'), 'packages', 'services'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
};
