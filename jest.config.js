/** Two tiers: fast unit tests over pure code, and integration tests against
 * real daemons and tools (Docker engine, squashfs-tools, siftool, Slurm, Lmod). */
/** Third-party packages on the render's hot path, whose use of globals jest's vm context makes slow. */
const HOT_PACKAGES = [
  'dockerfile-ast',
  'dockerfile-utils',
  'vscode-languageserver-textdocument',
  'vscode-languageserver-types',
];

const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  // Transpile only, in both tiers: `npm test` type-checks src/, bench/ and test/ once before jest
  // (`npm run typecheck` in scripts/pretest.sh), so a type check per test file would only repeat it.
  // Over the 52 integration files that repeat cost 88 s of CPU against 20 s (jest -t nomatch, no cache).
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.transpile.json' }],
    [`/node_modules/(?:${HOT_PACKAGES.join('|')})/.+\\.js$`]: '<rootDir>/test/support/local-builtins-transform.js',
  },
  // node_modules are not transformed, but for the packages above (see the transform for why).
  transformIgnorePatterns: [`/node_modules/(?!(?:${HOT_PACKAGES.join('|')})/)`],
};
module.exports = {
  // The plain JSON results (as `jest --json` writes them) for .ci/run's count.
  testResultsProcessor: '<rootDir>/test/support/results-file.js',
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
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
