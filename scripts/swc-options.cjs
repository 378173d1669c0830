// One source for the SWC settings used by the build (scripts/build.mjs) and by jest (@swc/jest),
// so that tests run exactly the code the product runs: legacy decorators + emitted metadata
// (NestJS and TypeORM read it), CommonJS output, and the @custodian/* aliases rewritten.
const path = require('node:path');

const root = path.resolve(__dirname, '..');

module.exports = function swcOptions({ forBuild = false } = {}) {
  return {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      target: 'es2022',
      keepClassNames: true,
      baseUrl: root,
      paths: {
        '@custodian/contracts': ['libs/contracts/src/index.ts'],
        '@custodian/platform': ['libs/platform/src/index.ts'],
        '@custodian/policy': ['libs/policy/src/index.ts'],
      },
    },
    module: { type: 'commonjs', strict: true },
    sourceMaps: forBuild ? true : 'inline',
  };
};
