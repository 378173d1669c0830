// Transpile-only build with SWC (about a second for the whole tree): type checking is its own
// gate (`npm run typecheck`). Output mirrors the source tree: dist/apps/<svc>/main.js,
// dist/all-in-one/main.js, dist/libs/... Aliases (@custodian/*) become relative requires.
import { transformFile } from '@swc/core';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { chmod, cp, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const swcOptions = require('./swc-options.cjs');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist');
const sourceDirs = ['apps', 'libs', 'all-in-one', 'cli', 'packages'];

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
// The `custodian` command (package.json bin): an executable entry in front of the built cli/main.js.
await writeFile(path.join(out, 'cli', 'custodian.js'), `#!/usr/bin/env node\n'use strict';\nrequire('./main.js');\n`);
await chmod(path.join(out, 'cli', 'custodian.js'), 0o755);
// Data files the code reads at run time (the demo CRM bundle of the all-in-one first start).
await cp(path.join(root, 'apps', 'objects', 'bundles'), path.join(out, 'apps', 'objects', 'bundles'), { recursive: true });
// The web console (console/, Vite): rebuilt only when its sources or the lockfile changed, since
// every test run calls this script; served from dist/console/dist by the all-in-one at /console.
await buildConsole();
await cp(path.join(root, 'console', 'dist'), path.join(out, 'console', 'dist'), { recursive: true });
if (!process.env.CUSTODIAN_QUIET_BUILD) {
  console.error(`built ${jobs.length} files into dist/ in ${Date.now() - started} ms`);
}

async function buildConsole() {
  const dir = path.join(root, 'console');
  const hash = createHash('sha256');
  const files = ['index.html', 'vite.config.mts', '../package-lock.json'];
  for await (const file of walkAll(path.join(dir, 'src'))) files.push(path.relative(dir, file));
  // The console bundles the generated API client: a regenerated client rebuilds it.
  for await (const file of walkAll(path.join(root, 'packages', 'client', 'src'))) files.push(path.relative(dir, file));
  // …and so do the few pure modules of libs/ it imports (the poller's backoff ceiling).
  files.push('../libs/platform/src/backoff.ts');
  for (const file of files.sort())
    hash
      .update(file)
      .update('\0')
      .update(await readFile(path.join(dir, file)))
      .update('\0');
  const fingerprint = hash.digest('hex');
  const stamp = path.join(dir, 'dist', '.source-hash');
  if ((await readFile(stamp, 'utf8').catch(() => '')) === fingerprint) return;
  const started = Date.now();
  // Build beside the old output and swap, so a concurrent build or copy never sees a half-written dist.
  const tmp = path.join(dir, `.dist-${process.pid}`);
  const { build } = await import('vite');
  await build({ configFile: path.join(dir, 'vite.config.mts'), logLevel: 'warn', build: { outDir: tmp, emptyOutDir: true } });
  await writeFile(path.join(tmp, '.source-hash'), fingerprint);
  const old = path.join(dir, `.dist-old-${process.pid}`);
  await rename(path.join(dir, 'dist'), old).catch(() => undefined);
  await rename(tmp, path.join(dir, 'dist'));
  await rm(old, { recursive: true, force: true });
  if (!process.env.CUSTODIAN_QUIET_BUILD) console.error(`built the console into console/dist in ${Date.now() - started} ms`);
}

async function* walkAll(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walkAll(full);
    else yield full;
  }
}
