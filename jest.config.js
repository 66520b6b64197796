/** Two tiers: fast unit tests over pure code, and integration tests against
 * real daemons and tools (Docker engine, squashfs-tools, siftool, Slurm, Lmod). */
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
};
module.exports = {
  // The plain JSON results (as `jest --json` writes them) for .ci/run's count.
  testResultsProcessor: '<rootDir>/test/support/results-file.js',
  projects: [
    // Transpile only, so the unit tier stays fast on 2 cores; `npm run typecheck` checks the tests' types.
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.transpile.json' }] },
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      slowTestThreshold: 60,
      // Starts the engine, munge and Slurm when they are not running (scripts/setup.sh).
      globalSetup: '<rootDir>/test/support/global-setup.js',
    },
  ],
};
