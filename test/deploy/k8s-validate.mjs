// Validates Kubernetes manifests offline, without a cluster:
//  1. against the Kubernetes OpenAPI schemas compiled into the `kubernetes-models` packages
//     (types, required fields, enums, formats; ServiceMonitor from the Prometheus Operator models);
//  2. strictly: every field must exist in the API type (the OpenAPI schemas allow unknown fields,
//     which the API server would silently drop, e.g. a misspelt `securityContex`). The API types
//     are read from the same packages' type declarations with the TypeScript compiler.
// The packages are ESM only, so the jest suite runs this as a child process:
//   node test/deploy/k8s-validate.mjs < manifests.json   → prints [{ index, kind, name, errors }]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** apiVersion/kind → [module specifier, exported class/interface name]. */
function modelOf(apiVersion, kind) {
  if (apiVersion === 'monitoring.coreos.com/v1') return [`@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`, kind];
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return [`kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`, kind];
}

const docs = JSON.parse(readFileSync(0, 'utf8'));

// --- strict field check: one TypeScript program that imports every kind's interface ---------
const kinds = [...new Map(docs.map((d) => [`${d.apiVersion}|${d.kind}`, d])).values()];
const entry = path.join(path.dirname(new URL(import.meta.url).pathname), '__k8s_types__.ts');
const source = kinds
  .map((d, i) => `import type { I${d.kind} as T${i} } from '${modelOf(d.apiVersion, d.kind)[0]}';\nexport type K${i} = T${i};`)
  .join('\n');
const host = ts.createCompilerHost({});
const readFile = host.readFile.bind(host);
host.readFile = (f) => (f === entry ? source : readFile(f));
const fileExists = host.fileExists.bind(host);
host.fileExists = (f) => f === entry || fileExists(f);
const program = ts.createProgram({
  rootNames: [entry],
  options: { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, noEmit: true, skipLibCheck: true, types: [] },
  host,
});
const checker = program.getTypeChecker();
const sourceFile = program.getSourceFile(entry);
const typeOfKind = new Map();
for (const stmt of sourceFile.statements) {
  if (ts.isTypeAliasDeclaration(stmt)) {
    const i = Number(stmt.name.text.slice(1));
    const t = checker.getTypeAtLocation(stmt.name);
    if (!(t.flags & ts.TypeFlags.Any)) typeOfKind.set(`${kinds[i].apiVersion}|${kinds[i].kind}`, t);
  }
}

function objectParts(type) {
  const parts = type.isUnion() ? type.types : [type];
  return parts.filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)));
}

function strict(value, type, at, errors) {
  if (value === null || typeof value !== 'object') return;
  const parts = objectParts(type);
  if (parts.some((t) => t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown))) return;
  if (Array.isArray(value)) {
    const arr = parts.find((t) => checker.isArrayType(t));
    if (!arr) return;
    const [element] = checker.getTypeArguments(arr);
    value.forEach((v, i) => strict(v, element, `${at}[${i}]`, errors));
    return;
  }
  const obj = parts.find((t) => t.flags & ts.TypeFlags.Object && !checker.isArrayType(t));
  if (!obj) return;
  const index = checker.getIndexTypeOfType(obj, ts.IndexKind.String);
  for (const [key, v] of Object.entries(value)) {
    const prop = checker.getPropertyOfType(obj, key);
    if (prop) strict(v, checker.getTypeOfSymbol(prop), `${at}.${key}`, errors);
    else if (index) strict(v, index, `${at}.${key}`, errors);
    else errors.push(`${at}.${key}: unknown field`);
  }
}

// --- schema validation and report -------------------------------------------------------------
const results = [];
for (const [index, doc] of docs.entries()) {
  const errors = [];
  const name = doc?.metadata?.name;
  const [specifier, className] = modelOf(String(doc?.apiVersion), String(doc?.kind));
  let Model;
  try {
    Model = (await import(specifier))[className];
  } catch {
    Model = undefined;
  }
  if (!Model) {
    errors.push(`no schema for ${doc?.apiVersion} ${doc?.kind}`);
  } else {
    try {
      new Model(doc).validate();
    } catch (error) {
      errors.push(String(error?.message ?? error));
    }
    const type = typeOfKind.get(`${doc.apiVersion}|${doc.kind}`);
    if (!type) errors.push(`no API type for ${doc.apiVersion} ${doc.kind}`);
    else strict(doc, type, doc.kind, errors);
  }
  results.push({ index, kind: doc?.kind, name, errors });
}
process.stdout.write(JSON.stringify(results));
