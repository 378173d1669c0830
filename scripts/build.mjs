// Transpile-only build with SWC (about a second for the whole tree): type checking is its own
// gate (`npm run typecheck`). Output mirrors the source tree: dist/apps/<svc>/main.js,
// dist/all-in-one/main.js, dist/libs/... Aliases (@custodian/*) become relative requires.
import { transformFile } from '@swc/core';
import { createRequire } from 'node:module';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const swcOptions = require('./swc-options.cjs');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist');
const sourceDirs = ['apps', 'libs', 'all-in-one'];

async function* walk(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'test' || entry.name === 'node_modules') continue;
      yield* walk(full);
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !/\.(spec|test)\.ts$/.test(entry.name)) {
      yield full;
    }
  }
}

const started = Date.now();
await rm(out, { recursive: true, force: true });
const jobs = [];
for (const dir of sourceDirs) {
  for await (const file of walk(path.join(root, dir))) {
    jobs.push(
      (async () => {
        const rel = path.relative(root, file);
        const target = path.join(out, rel.replace(/\.ts$/, '.js'));
        const { code, map } = await transformFile(file, {
          ...swcOptions({ forBuild: true }),
          filename: file,
          outputPath: target,
          sourceFileName: path.relative(path.dirname(target), file),
        });
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, `${code}\n//# sourceMappingURL=${path.basename(target)}.map\n`);
        if (map) await writeFile(`${target}.map`, map);
      })(),
    );
  }
}
await Promise.all(jobs);
// Each service's entry point is dist/apps/<svc>/main.js (the Dockerfile and Helm chart run that).
for (const app of await readdir(path.join(root, 'apps'))) {
  await writeFile(path.join(out, 'apps', app, 'main.js'), `'use strict';\nrequire('./src/main.js');\n`).catch(() => undefined);
}
// Data files the code reads at run time (the demo CRM bundle of the all-in-one first start).
await cp(path.join(root, 'apps', 'objects', 'bundles'), path.join(out, 'apps', 'objects', 'bundles'), { recursive: true });
if (!process.env.CUSTODIAN_QUIET_BUILD) {
  console.error(`built ${jobs.length} files into dist/ in ${Date.now() - started} ms`);
}
