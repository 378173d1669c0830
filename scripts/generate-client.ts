/**
 * Generates the typed TypeScript client (packages/client/src/generated.ts) from the OpenAPI
 * document a running Custodian serves (docs/api.md):
 *
 *   node scripts/run-ts.cjs scripts/generate-client.ts            # starts this tree's all-in-one on a throw-away embedded database
 *   node scripts/run-ts.cjs scripts/generate-client.ts --from http://127.0.0.1:3000/api/v1/openapi.json   # or a file
 *
 * test/integration/openapi-client.int-spec.ts fails when the checked-in file differs from what
 * this script makes from the document of the current source, so regenerate after changing a route.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAllInOne } from '../all-in-one/all-in-one';

type Json = Record<string, unknown>;

interface Operation {
  operationId: string;
  summary?: string;
  parameters?: Array<{ name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema?: Json; description?: string }>;
  requestBody?: { content: Record<string, { schema: Json }> };
  responses: Record<string, { description?: string; content?: Record<string, { schema?: Json }> }>;
  'x-custodian-policy'?: Json;
}

export interface OpenApiLike {
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const key = (name: string): string => (IDENT.test(name) ? name : JSON.stringify(name));
const pascal = (id: string): string => id.charAt(0).toUpperCase() + id.slice(1);

/** A JSON Schema (the subset TypeBox emits) as a TypeScript type. */
export function tsType(schema: Json | undefined, indent = ''): string {
  if (!schema || Object.keys(schema).filter((k) => k !== 'description').length === 0) return 'unknown';
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (Array.isArray(schema.anyOf)) return union((schema.anyOf as Json[]).map((s) => tsType(s, indent)));
  if (Array.isArray(schema.oneOf)) return union((schema.oneOf as Json[]).map((s) => tsType(s, indent)));
  if (Array.isArray(schema.allOf)) return (schema.allOf as Json[]).map((s) => paren(tsType(s, indent))).join(' & ');
  if (Array.isArray(schema.type)) return union((schema.type as string[]).map((t) => tsType({ ...schema, type: t }, indent)));
  switch (schema.type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      if (Array.isArray(schema.prefixItems)) return `[${(schema.prefixItems as Json[]).map((s) => tsType(s, indent)).join(', ')}]`;
      return `Array<${tsType(schema.items as Json | undefined, indent)}>`;
    }
    case 'object': {
      const props = (schema.properties ?? {}) as Record<string, Json>;
      const required = new Set((schema.required ?? []) as string[]);
      const inner = `${indent}  `;
      const lines = Object.entries(props).map(([name, s]) => {
        const doc = typeof s.description === 'string' ? `${inner}/** ${s.description.replace(/\*\//g, '* /')} */\n` : '';
        return `${doc}${inner}${key(name)}${required.has(name) ? '' : '?'}: ${tsType(s, inner)};`;
      });
      const extra = schema.additionalProperties;
      if (extra === false) {
        // closed object
      } else if (extra && typeof extra === 'object' && Object.keys(extra).length > 0) {
        lines.push(`${inner}[key: string]: ${tsType(extra as Json, inner)}${lines.length ? ' | undefined' : ''};`);
      } else if (schema.patternProperties && typeof schema.patternProperties === 'object') {
        lines.push(`${inner}[key: string]: unknown;`);
      } else {
        lines.push(`${inner}[key: string]: unknown;`);
      }
      return lines.length ? `{\n${lines.join('\n')}\n${indent}}` : 'Record<string, never>';
    }
    default:
      return 'unknown';
  }
}

function union(parts: string[]): string {
  const unique = [...new Set(parts)];
  return unique.includes('unknown') ? 'unknown' : unique.map(paren).join(' | ');
}

function paren(t: string): string {
  return /^[^{]*\s[|&]\s/.test(t) && !t.startsWith('{') ? `(${t})` : t;
}

interface Rendered {
  types: string[];
  method: string;
  table: string;
}

function renderOperation(pathTemplate: string, method: string, op: Operation): Rendered {
  const name = pascal(op.operationId);
  const types: string[] = [];
  const params = op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === 'path');
  const queryParams = params.filter((p) => p.in === 'query');
  const headerParams = params.filter((p) => p.in === 'header');
  const fields: string[] = [];
  for (const p of pathParams) fields.push(`  ${key(p.name)}: string;`);
  if (queryParams.length) {
    types.push(
      `export interface ${name}Query {\n${queryParams
        .map(
          (p) =>
            `${p.description ? `  /** ${p.description} */\n` : ''}  ${key(p.name)}${p.required ? '' : '?'}: ${tsType(p.schema, '  ')};`,
        )
        .join('\n')}\n}`,
    );
    fields.push(`  query?: ${name}Query;`);
  }
  const bodyMedia = op.requestBody ? Object.entries(op.requestBody.content)[0] : undefined;
  if (bodyMedia) {
    types.push(`export type ${name}Body = ${tsType(bodyMedia[1].schema)};`);
    fields.push(`  body: ${name}Body;`);
  }
  if (headerParams.length)
    fields.push(`  headers?: { ${headerParams.map((h) => `${key(h.name)}${h.required ? '' : '?'}: string`).join('; ')} };`);
  const success = Object.entries(op.responses).filter(([status]) => /^2\d\d$/.test(status));
  const raw = success.some(([, r]) => r.content && !Object.keys(r.content).some((t) => t === 'application/json' || t.endsWith('+json')));
  let result = 'void';
  if (raw) result = 'Response';
  else {
    const parts = success.map(([, r]) => (r.content ? tsType(Object.values(r.content)[0]?.schema) : 'void'));
    result = union(parts.length ? parts : ['void']);
    if (result !== 'void') {
      types.push(`export type ${name}Response = ${result};`);
      result = `${name}Response`;
    }
  }
  const required = pathParams.length > 0 || !!bodyMedia;
  if (fields.length) types.push(`export interface ${name}Args {\n${fields.join('\n')}\n}`);
  const argsDecl = fields.length ? `args${required ? '' : '?'}: ${name}Args, ` : '';
  const policy = op['x-custodian-policy'] as { access?: string; capabilities?: string[] } | undefined;
  const doc = [
    op.summary,
    `\`${method.toUpperCase()} ${pathTemplate}\`${policy?.access === 'public' ? ' (public)' : policy?.capabilities?.length ? ` (needs ${policy.capabilities.join(', ')})` : ''}`,
  ]
    .filter(Boolean)
    .join(' — ');
  const methodSrc = `  /** ${doc.replace(/\*\//g, '* /')} */
  ${op.operationId}(${argsDecl}options?: CallOptions): Promise<${result}> {
    return this.call(${JSON.stringify(op.operationId)}, ${fields.length ? 'args' : 'undefined'}, options) as Promise<${result}>;
  }`;
  const table = `  ${op.operationId}: { method: ${JSON.stringify(method.toUpperCase())}, path: ${JSON.stringify(pathTemplate)}, pathParams: ${JSON.stringify(
    pathParams.map((p) => p.name),
  )}${bodyMedia ? `, bodyType: ${JSON.stringify(bodyMedia[0])}` : ''}${raw ? ', raw: true' : ''} },`;
  return { types, method: methodSrc, table };
}

/** The client source for a document: types per operation, an operation table, one method per operation. */
export function renderClient(doc: OpenApiLike): string {
  const ops: Rendered[] = [];
  for (const [p, methods] of Object.entries(doc.paths).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [method, op] of Object.entries(methods).sort(([a], [b]) => a.localeCompare(b))) ops.push(renderOperation(p, method, op));
  }
  return `// Generated by scripts/generate-client.ts from the OpenAPI document (${doc.info.title} ${doc.info.version}). Do not edit by hand:
// change the route's @ApiContract and run \`node scripts/run-ts.cjs scripts/generate-client.ts\` (docs/api.md).
import { ClientRuntime, type CallOptions, type ClientOptions, type OperationInfo } from './runtime';

${ops.flatMap((o) => o.types).join('\n\n')}

export const OPERATIONS = {
${ops.map((o) => o.table).join('\n')}
} as const satisfies Record<string, OperationInfo>;

/** One method per operation of the API; errors throw CustodianApiError (code, status, requestId). */
export class GeneratedClient extends ClientRuntime {
  constructor(options: ClientOptions) {
    super(options, OPERATIONS);
  }

${ops.map((o) => o.method).join('\n\n')}
}
`;
}

/** Formats like the rest of the tree (prettier's own CLI), so the checked-in file passes \`prettier --check\`. */
export function formatClient(source: string, file: string): string {
  return execFileSync(process.execPath, [require.resolve('prettier/bin/prettier.cjs'), '--stdin-filepath', file], {
    input: source,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

export const CLIENT_FILE = path.resolve(__dirname, '..', 'packages', 'client', 'src', 'generated.ts');

/** The document of this source tree: the all-in-one on a throw-away embedded PostgreSQL in a temporary directory. */
async function documentOfThisTree(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'custodian-openapi-'));
  const host = await startAllInOne({
    PORT: '0',
    HOST: '127.0.0.1',
    CUSTODIAN_DATA_DIR: dir,
    CUSTODIAN_PG_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
    CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
    CUSTODIAN_ADMIN_EMAIL: 'generator@custodian.local',
    CUSTODIAN_ADMIN_PASSWORD: randomBytes(18).toString('base64url'),
    LOG_LEVEL: 'silent',
  });
  try {
    return await (await fetch(`${host.url}/api/v1/openapi.json`)).text();
  } finally {
    await host.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--from');
  const from = i >= 0 ? argv[i + 1] : undefined;
  if (i >= 0 && !from) throw new Error('usage: generate-client.ts [--from URL|file]');
  const text = !from
    ? await documentOfThisTree()
    : /^https?:\/\//.test(from)
      ? await fetch(from).then(async (r) => {
          if (!r.ok) throw new Error(`GET ${from}: ${r.status}`);
          return r.text();
        })
      : await readFile(from, 'utf8');
  const source = formatClient(renderClient(JSON.parse(text) as OpenApiLike), CLIENT_FILE);
  await writeFile(CLIENT_FILE, source);
  process.stderr.write(
    `wrote ${path.relative(process.cwd(), CLIENT_FILE)} (${Object.keys((JSON.parse(text) as OpenApiLike).paths).length} paths)\n`,
  );
}

if (process.argv[1] === __filename) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
