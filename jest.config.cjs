// Three projects, all run by `npm test`: unit (pure, fast), integration (real PostgreSQL and
// NATS on this machine), e2e (built services as separate processes). The global setup refuses
// to run when PostgreSQL or NATS is missing: a missing dependency is a failure, never a skip.
const swcOptions = require('./scripts/swc-options.cjs');

const transform = { '^.+\\.ts$': ['@swc/jest', swcOptions()] };
const moduleNameMapper = {
  '^@custodian/(contracts|platform|policy)$': '<rootDir>/libs/$1/src/index.ts',
};
const common = { transform, moduleNameMapper, testEnvironment: 'node', moduleFileExtensions: ['ts', 'js', 'json'] };

module.exports = {
  globalSetup: '<rootDir>/test/support/global-setup.cjs',
  // Integration and e2e tests start databases and processes; unit tests finish in milliseconds anyway.
  testTimeout: 60_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs,all-in-one,test,console/src}/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs,all-in-one,test}/**/*.int-spec.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'] },
  ],
};
