// Three projects, all run by `npm test`: unit (pure, fast), integration (real PostgreSQL and
// NATS on this machine), e2e (built services as separate processes). The global setup refuses
// to run when PostgreSQL or NATS is missing: a missing dependency is a failure, never a skip.
const os = require('node:os');
const swcOptions = require('./scripts/swc-options.cjs');

// ESM-only packages (no CommonJS build) that jest must transform to CommonJS to load them in its
// module system; the product itself loads them with Node's require(esm). Add a package here when
// it is ESM-only.
const esmPackages = ['oidc-provider', 'openid-client', 'oauth4webapi', 'jose'];
const esmOptions = { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } };
const transform = {
  '^.+\\.ts$': ['@swc/jest', swcOptions()],
  [`/node_modules/(${esmPackages.join('|')})/.+\\.m?js$`]: ['@swc/jest', esmOptions],
};
const transformIgnorePatterns = [`/node_modules/(?!(${esmPackages.join('|')})/)`];
const moduleNameMapper = {
  '^@custodian/(contracts|platform|policy)$': '<rootDir>/libs/$1/src/index.ts',
  // The generated API client, as the console imports it (console/tsconfig.json paths, the Vite alias).
  '^@custodian/client$': '<rootDir>/packages/client/src/index.ts',
};
const common = {
  transform,
  transformIgnorePatterns,
  moduleNameMapper,
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
};

// Integration and e2e need the real PostgreSQL and NATS (checked, never skipped) and the migrated
// template database hosts are cloned from; unit tests need neither and run without them.
const services = { globalSetup: '<rootDir>/test/support/global-setup.cjs' };

// Workers: jest's default (cores − 1) is ONE worker on the 2-core CI machine, so every suite ran in
// series although most integration and e2e suites mostly wait on PostgreSQL, NATS and child
// processes. Two workers at least; at most three, for PostgreSQL's 100 connections: a suite's
// database peaked at 14–27 connections (five services' pools; the approvals race suite 33), and
// every suite has its own database and NATS namespace.
// `--maxWorkers=N` on the command line still overrides this (docs/testing.md).
const maxWorkers = Math.min(3, Math.max(2, os.availableParallelism() - 1));

module.exports = {
  maxWorkers,
  // Longest suites first, also on a clean clone without jest's timing cache (test/support/sequencer.cjs).
  testSequencer: '<rootDir>/test/support/sequencer.cjs',
  // Integration and e2e tests start databases and processes; unit tests finish in milliseconds anyway.
  testTimeout: 60_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs,all-in-one,test,console/src,bench}/**/*.spec.ts'] },
    {
      ...common,
      ...services,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs,all-in-one,test}/**/*.int-spec.ts'],
    },
    { ...common, ...services, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'] },
  ],
};
