/**
 * Architecture gate (STYLE.md #9): apps never import apps, libs never import apps or the
 * all-in-one host, nothing imports the host, no cycles. The all-in-one host is the single
 * composition root allowed to import service modules (docs/adr/0003).
 */
module.exports = {
  forbidden: [
    {
      name: 'no-app-to-app',
      severity: 'error',
      comment: 'Services talk over the bus through libs/contracts, never by import.',
      from: { path: '^apps/([^/]+)/' },
      to: { path: '^apps/([^/]+)/', pathNot: '^apps/$1/' },
    },
    {
      name: 'no-lib-to-app',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^(apps|all-in-one)/' },
    },
    {
      name: 'no-import-of-host',
      severity: 'error',
      from: { path: '^(apps|libs)/' },
      to: { path: '^all-in-one/' },
    },
    {
      name: 'host-imports-only-service-modules',
      severity: 'error',
      comment: 'The host composes modules; it does not reach into service internals.',
      from: { path: '^all-in-one/' },
      to: { path: '^apps/', pathNot: '^apps/[^/]+/src/[^/]+\\.module\\.ts$' },
    },
    {
      name: 'contracts-stand-alone',
      severity: 'error',
      comment: 'Contracts are values shared by every service; they may reuse the policy model schemas, nothing else.',
      from: { path: '^libs/contracts/' },
      to: { path: '^libs/platform/' },
    },
    {
      name: 'policy-is-pure',
      severity: 'error',
      comment: 'The decision library depends on no other lib: it must run anywhere, including benchmarks.',
      from: { path: '^libs/policy/' },
      to: { path: '^libs/(contracts|platform)/' },
    },
    {
      name: 'no-import-of-cli',
      severity: 'error',
      comment: 'The custodian CLI is a composition root like the host (it runs local service code): nothing imports it.',
      from: { path: '^(apps|libs|all-in-one|packages)/' },
      to: { path: '^cli/' },
    },
    {
      name: 'client-stands-alone',
      severity: 'error',
      comment: 'The generated API client (packages/client) is used on its own: it imports nothing of the tree.',
      from: { path: '^packages/client/' },
      to: { path: '^(apps|libs|all-in-one|cli)/' },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['require', 'node', 'default'] },
  },
};
