#!/usr/bin/env node
// Runs a TypeScript entry point (benchmarks, CLI tools) without a build step: SWC transpiles each
// .ts file on require with the same options as the build, and @custodian/* resolves to libs/.
// Usage: node scripts/run-ts.cjs <file.ts> [args...]
const Module = require('node:module');
const path = require('node:path');
const fs = require('node:fs');
const { transformSync } = require('@swc/core');
const swcOptions = require('./swc-options.cjs');

const root = path.resolve(__dirname, '..');
const aliases = {
  '@custodian/contracts': path.join(root, 'libs/contracts/src/index.ts'),
  '@custodian/platform': path.join(root, 'libs/platform/src/index.ts'),
  '@custodian/policy': path.join(root, 'libs/policy/src/index.ts'),
};
const originalResolve = Module._resolveFilename;
Module._resolveFilename = function resolve(request, ...rest) {
  return originalResolve.call(this, aliases[request] ?? request, ...rest);
};
const options = swcOptions();
require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), { ...options, filename });
  module._compile(code, filename);
};

const [, , entry, ...args] = process.argv;
if (!entry) {
  console.error('usage: node scripts/run-ts.cjs <file.ts> [args...]');
  process.exit(2);
}
process.argv = [process.argv[0], path.resolve(entry), ...args];
require(path.resolve(entry));
